"""Hash-chained, append-only audit log.

Each event's hash covers its content and the previous event's hash, so editing,
deleting or inserting a row breaks the chain at that point.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
from collections.abc import Iterable

from django.db import connection, transaction
from django.utils import timezone

from .models import AuditEvent

GENESIS_HASH = "0" * 64
# Arbitrary constant: the PostgreSQL advisory lock that serializes appends to the chain.
_CHAIN_LOCK_ID = 0x534D494D45

current_source_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_source_ip", default=None)


def event_hash(*, timestamp, actor_id, actor_name, action, object_type, object_id, source_ip, details, previous_hash) -> str:
    content = json.dumps(
        {
            "timestamp": timestamp.isoformat(timespec="microseconds"),
            "actor_id": actor_id,
            "actor_name": actor_name,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "source_ip": source_ip,
            "details": details,
            "previous_hash": previous_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(content.encode()).hexdigest()


@transaction.atomic
def audit_record(*, action: str, actor=None, obj=None, details: dict | None = None) -> AuditEvent:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_ID])
    previous = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS_HASH
    # The database keeps microseconds at most; hash exactly what is stored.
    fields = {
        "timestamp": timezone.now(),
        "actor_id": actor.pk if actor is not None and actor.is_authenticated else None,
        "actor_name": actor.get_username() if actor is not None and actor.is_authenticated else "",
        "action": action,
        "object_type": obj._meta.label_lower if obj is not None else "",
        "object_id": str(obj.pk) if obj is not None else "",
        "source_ip": current_source_ip.get(),
        "details": details or {},
        "previous_hash": previous,
    }
    return AuditEvent.objects.create(**fields, hash=event_hash(**fields))


def audit_chain_breaks(events: Iterable[AuditEvent]) -> AuditEvent | None:
    """The first event, in id order, whose hash or link does not match; None when intact."""
    previous = GENESIS_HASH
    for event in events:
        expected = event_hash(
            timestamp=event.timestamp,
            actor_id=event.actor_id,
            actor_name=event.actor_name,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            source_ip=event.source_ip,
            details=event.details,
            previous_hash=event.previous_hash,
        )
        if event.previous_hash != previous or event.hash != expected:
            return event
        previous = event.hash
    return None
