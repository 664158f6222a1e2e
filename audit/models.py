"""The audit log: one row per security-relevant event, hash-chained with a key (see chain.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One security-relevant event; each hashes (HMAC) its content and its predecessor's hash."""

    timestamp = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)  # actor_id is hashed: deactivate users, never delete them
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)  # an AuditAction value; no choices, so a new type needs no migration
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
        # The admin's filters read the newest page of one event or object type from these, not a sort of its rows.
        indexes = [
            models.Index(fields=["action", "id"], name="auditevent_action_id"),
            models.Index(fields=["object_type", "id"], name="auditevent_object_type_id"),
        ]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action}"


class AuditChainState(models.Model):
    """How far the hash chain is known to verify: one row, written by the chain checks (verification.py).

    The admin reads it instead of re-hashing the log on every view; only events after the
    verified point are hashed there, and the periodic full check re-reads everything (an old
    event edited after it was verified). A table of its own: the audit table stays append-only.
    """

    # The newest event of the chain's verified prefix (0: none yet) and its hash, the link the next event must carry.
    verified_through_id = models.BigIntegerField(default=0)
    verified_through_hash = models.CharField(max_length=64, default="0" * 64)
    verified_at = models.DateTimeField(null=True, blank=True)
    # The check's state at that point (chain.py): keyed events seen, and the first unkeyed event not sealed yet.
    keyed = models.BooleanField(default=False)
    unsealed_from_id = models.BigIntegerField(null=True, blank=True)
    # The first event after the verified prefix that does not verify, and why; found by which check, when.
    broken_id = models.BigIntegerField(null=True, blank=True)
    broken_reason = models.TextField(blank=True)
    broken_unverifiable = models.BooleanField(default=False)  # a chain key id that is not configured
    broken_found_at = models.DateTimeField(null=True, blank=True)
    # The last full re-verification from the genesis: when, over how many events, and its verdict.
    full_check_at = models.DateTimeField(null=True, blank=True)
    full_check_events = models.BigIntegerField(default=0)
    full_check_intact = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"audit chain verified through #{self.verified_through_id}"
