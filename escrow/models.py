"""Escrowed keys, pickup copies, key recovery agents and recoveries.

No field here ever holds a private key in plaintext: escrow is CMS EnvelopedData to the
agents' certificates, pickup copies are sealed under a key-encryption key that lives
outside the database.
"""

from __future__ import annotations

from functools import cached_property

from cryptography import x509
from django.conf import settings
from django.db import models
from django.utils import timezone


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


# --- Key recovery under dual control ----------------------------------------------------


class RecoveryRequest(models.Model):
    """A request to recover escrowed keys: one certificate's, or all of an employee's.

    `employee` is always the keys' owner; with `certificate` empty the request covers all of
    the employee's escrowed keys (the "key history"). Approvals are RecoveryDecision rows;
    the number needed is fixed when the request is made.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"
        COMPLETED = "completed"
        WITHDRAWN = "withdrawn"
        EXPIRED = "expired"

    class Purpose(models.TextChoices):
        OWN_KEY = "own-key", "the owner's own key"
        ADMIN = "admin", "administrative recovery"
        LEGAL_HOLD = "legal-hold", "legal hold"

    certificate = models.ForeignKey(
        "enrollment.Certificate", null=True, blank=True, on_delete=models.PROTECT, related_name="recovery_requests"
    )
    employee = models.ForeignKey("enrollment.Employee", on_delete=models.PROTECT, related_name="recovery_requests")
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    reason = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="recovery_requests_made"
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="recovery_requests_received"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    required_approvals = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    decided_at = models.DateTimeField(null=True, blank=True, help_text="When it was approved or rejected.")
    approval_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="An approved recovery not completed by then expires (PORTAL_RECOVERY_APPROVAL_DAYS)."
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="recovery_requests_withdrawn",
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="recovery_requests_completed",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("request_recovery", "Can request the recovery of any employee's key"),
            ("request_legal_hold", "Can request the recovery of any employee's key for legal hold"),
            ("approve_recoveryrequest", "Can approve or reject key recovery requests"),
            ("complete_recoveryrequest", "Can complete approved key recovery requests (key recovery agent)"),
        ]
        # One open recovery per keys and recipient (services.recovery; core/db.py: 409 on a violation). Two
        # indexes, because a unique index counts empty certificates (all of the employee's keys) as distinct.
        constraints = [
            models.UniqueConstraint(
                fields=["employee", "certificate", "recipient"],
                condition=models.Q(certificate__isnull=False, status__in=["pending", "approved"]),
                name="one_open_recovery_per_certificate",
                violation_error_message="A recovery request for this key and this recipient is open already.",
            ),
            models.UniqueConstraint(
                fields=["employee", "recipient"],
                condition=models.Q(certificate__isnull=True, status__in=["pending", "approved"]),
                name="one_open_recovery_of_all_keys",
                violation_error_message="A recovery request for these keys and this recipient is open already.",
            ),
        ]

    def __str__(self) -> str:
        what = f"certificate {self.certificate.serial}" if self.certificate_id else "all escrowed keys"
        return f"Recovery #{self.pk} of {what} of {self.employee.mail}"

    @property
    def covers_all_keys(self) -> bool:
        return self.certificate_id is None


class RecoveryDecision(models.Model):
    class Decision(models.TextChoices):
        APPROVE = "approve"
        REJECT = "reject"

    request = models.ForeignKey(RecoveryRequest, on_delete=models.CASCADE, related_name="decisions")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="recovery_decisions")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "approver"], name="one_decision_per_approver"),
        ]

    def __str__(self) -> str:
        return f"{self.approver} {self.decision}s recovery #{self.request_id}"


class RecoveryPickupQuerySet(models.QuerySet):
    def open(self):
        """Pickups whose download window has not closed."""
        return self.filter(expires_at__gt=timezone.now()).select_related("certificate", "request")


class RecoveryPickup(models.Model):
    """One recovered key, sealed under the pickup KEK for the request's recipient.

    The associated data names the request, the certificate and the recipient, so a sealed
    key copied to another row (another request or recipient) does not open.
    """

    request = models.ForeignKey(RecoveryRequest, on_delete=models.CASCADE, related_name="pickups")
    certificate = models.ForeignKey("enrollment.Certificate", on_delete=models.PROTECT, related_name="recovery_pickups")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="recovery_pickups")
    sealed_key = models.BinaryField()
    expires_at = models.DateTimeField()
    download_count = models.PositiveIntegerField(default=0)
    last_downloaded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RecoveryPickupQuerySet.as_manager()

    class Meta:
        ordering = ["-certificate__not_before", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "certificate"], name="one_pickup_per_recovered_key"),
        ]

    def __str__(self) -> str:
        return f"Recovered key of {self.certificate} for {self.recipient}"
