"""Escrowed keys, pickup copies, key recovery agents and the audit log.

No field here ever holds a private key in plaintext: escrow is CMS EnvelopedData to the
agents' certificates, pickup copies are sealed under a key-encryption key that lives
outside the database.
"""

from __future__ import annotations

from functools import cached_property

from cryptography import x509
from django.conf import settings
from django.db import models


class KeyRecoveryAgent(models.Model):
    """An agent who can decrypt escrowed keys. Only the certificate is stored here."""

    name = models.CharField(max_length=128)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="recovery_agents"
    )
    certificate_der = models.BinaryField()
    fingerprint_sha256 = models.CharField(max_length=64, unique=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @cached_property
    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(bytes(self.certificate_der))


class EscrowRecord(models.Model):
    certificate = models.OneToOneField("enrollment.Certificate", on_delete=models.PROTECT, related_name="escrow")
    # CMS EnvelopedData (DER) of the PKCS#8 private key, to every agent in `agents`.
    envelope_der = models.BinaryField()
    agents = models.ManyToManyField(KeyRecoveryAgent, related_name="escrow_records")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Escrow of {self.certificate}"


class PickupCopy(models.Model):
    """The employee's own copy of their key for download, sealed under the pickup KEK."""

    certificate = models.OneToOneField("enrollment.Certificate", on_delete=models.CASCADE, related_name="pickup")
    sealed_key = models.BinaryField()
    expires_at = models.DateTimeField()
    download_count = models.PositiveIntegerField(default=0)
    last_downloaded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "pickup copies"

    def __str__(self) -> str:
        return f"Pickup of {self.certificate}"


class AuditEvent(models.Model):
    """One security-relevant event; each hashes its content and its predecessor's hash."""

    timestamp = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action}"
