"""Helpers of the audit tests: events hashed as the portal hashes them, and as a forger would."""

from __future__ import annotations

from audit.chain import GENESIS_HASH, event_hash, event_mac
from audit.keys import chain_keyring
from audit.models import AuditEvent


def keyed_hash(**fields) -> str:
    """The hash audit_record gives these fields now: an HMAC under the current chain key."""
    return event_mac(key_id=chain_keyring().current_id, **fields)


def head_hash() -> str:
    return AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS_HASH


def keyed_event(**fields) -> AuditEvent:
    """An event written with the chain key (as the portal would), with chosen fields."""
    key_id = chain_keyring().current_id
    return AuditEvent.objects.create(**fields, key_id=key_id, hash=event_mac(key_id=key_id, **fields))


def unkeyed_hash(**fields) -> str:
    """What someone without the chain key can compute: the unkeyed SHA-256 rule of before audit 0002."""
    return event_hash(**fields)
