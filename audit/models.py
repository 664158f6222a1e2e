"""The audit log: one row per security-relevant event, hash-chained with a key (see chain.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One security-relevant event; each hashes (HMAC) its content and its predecessor's hash."""

    timestamp = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)  # actor_id is hashed: deactivate users, never delete them
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)  # an AuditAction value; no choices, so a new type needs no migration
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    # The chain key the hash is an HMAC under (audit/keys.py); "" for the unkeyed SHA-256 of
    # the events written before audit 0002, which are valid only before its switch event.
    key_id = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        # The table kept its name when the model left the escrow app: the append-only
        # triggers, the role grants and the chain itself are unchanged (migration audit 0001).
        db_table = "escrow_auditevent"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action}"
