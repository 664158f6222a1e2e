"""Writing the audit log: append an event, anchor the head, export for auditors.

Every app records its events with `audit_record(action=AuditAction.X, ...)`; the chain
(`chain.py`) is extended under one lock, so that concurrent appends never fork it. Each event
is hashed with the current chain key (`keys.py`) and, once committed, also written to the
external sink (`sink.py`).

The lock is held from the append to the commit. A transaction that does more after its first
event (issuance: escrow, the request, the mail) records inside `audit_appends_at_end()`: its
events are then appended together when the block ends, so that concurrent workers wait on
each other for the appends only (issue 13).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from .chain import GENESIS_HASH, AuditAnchor, anchor_line, anchor_logger, event_fields, event_mac
from .context import current_source_ip
from .events import AuditAction
from .keys import chain_keyring
from .models import AuditEvent
from .sink import sink_emit

# Arbitrary constant: the PostgreSQL advisory lock that serializes appends to the chain.
_CHAIN_LOCK_ID = 0x534D494D45


def _lock_chain() -> None:
    """Serialize appends (and checkpoints) until the end of the transaction; SQLite serializes writers anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_ID])


# The events recorded inside `audit_appends_at_end()`, in order; None outside such a block.
_pending_events: ContextVar[list[AuditEvent] | None] = ContextVar("audit_pending_events", default=None)


def _append(events: list[AuditEvent]) -> None:
    """Link, hash and insert `events` at the head of the chain, under its lock (held until the commit)."""
    keyring = chain_keyring()  # read once per process; a missing key fails here, before the lock
    _lock_chain()
    previous = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS_HASH
    key_id = keyring.current_id
    for event in events:
        # Stamped under the lock: the chain's order is the timestamps' order. The database keeps
        # microseconds at most; hash exactly what is stored.
        event.timestamp = timezone.now()
        event.previous_hash = previous
        event.key_id = key_id
        event.hash = previous = event_mac(key_id=key_id, keyring=keyring, **event_fields(event))
    if len(events) == 1:
        events[0].save(force_insert=True)
    else:  # one INSERT; ids in list order (nobody else inserts while the lock is held)
        AuditEvent.objects.bulk_create(events)
    # The sink after the commit only: a rolled-back event was never in the log.
    for event in events:
        transaction.on_commit(lambda event=event: sink_emit(event), robust=True)


@contextlib.contextmanager
def audit_appends_at_end() -> Iterator[list[AuditEvent]]:
    """Inside a transaction: the events recorded in the block are appended when it ends without error.

    The chain's lock is then taken once, at the end, instead of at the first event; the events
    returned by `audit_record` meanwhile get their id, timestamp and hash then. Nested blocks
    append with the outermost one. An exception in the block appends nothing (and rolls back).
    """
    if _pending_events.get() is not None:
        yield _pending_events.get()
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_appends_at_end() needs a transaction: the events must commit with the block")
    pending: list[AuditEvent] = []
    token = _pending_events.set(pending)
    try:
        yield pending
    finally:
        _pending_events.reset(token)
    if pending:
        _append(pending)


def audit_record(*, action: AuditAction, actor=None, obj=None, details: dict | None = None) -> AuditEvent:
    if action not in AuditAction.values:
        raise ValueError(f"{action!r} is no audit event type; declare it in audit/events.py")
    chain_keyring()  # a missing chain key fails here, before anything else is written
    authenticated = actor is not None and actor.is_authenticated
    event = AuditEvent(
        actor_id=actor.pk if authenticated else None,
        actor_name=actor.get_username() if authenticated else "",
        action=str(action),
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        source_ip=current_source_ip.get(),
        details=details or {},
    )
    pending = _pending_events.get()
    if pending is not None:
        pending.append(event)
        return event
    # No savepoint of its own: a failed append fails the caller's transaction, as it must.
    with transaction.atomic(savepoint=False):
        _append([event])
    return event


@transaction.atomic
def audit_checkpoint(*, path=None, key: str | None = None) -> AuditAnchor:
    """Write the chain's current head as a signed anchor line to the anchor file and the log."""
    key = key if key is not None else settings.PORTAL_AUDIT_ANCHOR_KEY
    if not key:
        raise ImproperlyConfigured("PORTAL_AUDIT_ANCHOR_KEY is not set")
    path = Path(path if path is not None else settings.PORTAL_AUDIT_ANCHOR_FILE)
    _lock_chain()  # the head and the count must belong together
    head = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
    last_id, head_hash = head if head is not None else (0, GENESIS_HASH)
    anchor = AuditAnchor(
        last_id=last_id,
        hash=head_hash,
        count=AuditEvent.objects.filter(id__lte=last_id).count(),
        timestamp=timezone.now().isoformat(timespec="seconds"),
    )
    line = anchor_line(anchor, key=key)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # 0600 like every file under the data directory (a log shipper reads the logger's copy).
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    anchor_logger.info("%s", line)
    return anchor


# --- Export ---------------------------------------------------------------------------------

# actor_id and key_id are hashed too: with them (and the chain keys), an outside auditor can
# recompute the chain from an export.
AUDIT_EXPORT_COLUMNS = [
    "id",
    "timestamp",
    "actor_id",
    "actor",
    "action",
    "object_type",
    "object_id",
    "source_ip",
    "details",
    "previous_hash",
    "hash",
    "key_id",
]
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_PREFIXES) else value


def audit_event_export_fields(event: AuditEvent) -> dict:
    """An event as the API and the CSV show it: the stored values, the details as canonical JSON text in CSV."""
    return {
        "id": event.pk,
        "timestamp": event.timestamp.isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor": event.actor_name,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "source_ip": event.source_ip,
        "details": event.details,
        "previous_hash": event.previous_hash,
        "hash": event.hash,
        "key_id": event.key_id,
    }


class _Echo:
    def write(self, value: str) -> str:
        return value


def audit_csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    """The header and one line per event, produced as the events stream in."""
    writer = csv.writer(_Echo())
    yield writer.writerow(AUDIT_EXPORT_COLUMNS)
    for event in events:
        fields = audit_event_export_fields(event)
        fields["details"] = json.dumps(fields["details"], sort_keys=True, ensure_ascii=False)
        yield writer.writerow(
            [csv_safe("" if fields[name] is None else str(fields[name])) for name in AUDIT_EXPORT_COLUMNS]
        )


def audit_export_csv(*, actor, events: QuerySet, via: str, filters: dict) -> Iterator[str]:
    """Record who exported what, then stream the events (as they were before this export's own event)."""
    head = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    audit_record(
        action=AuditAction.AUDIT_EXPORTED,
        actor=actor,
        details={
            "via": via,
            "format": "csv",
            # What the auditor asked for, bounded: the query string is theirs to fill.
            "filters": {
                str(key)[:64]: str(value)[:200] for key, value in list(filters.items())[:20] if value not in (None, "")
            },
        },
    )
    return audit_csv_lines(events.filter(id__lte=head).order_by("id").iterator(chunk_size=2000))
