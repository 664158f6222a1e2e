"""The audit log's hash chain, its anchors and its verification: no writes, no locks.

Each event's hash covers its content and the previous event's hash, so editing,
deleting or inserting a row breaks the chain at that point. Anchors (signed heads written
outside the database) show when the newest events were deleted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from .models import AuditEvent

GENESIS_HASH = "0" * 64


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


def _expected_hash(event: AuditEvent) -> str:
    return event_hash(
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


def audit_chain_breaks(events: Iterable[AuditEvent], *, start_hash: str = GENESIS_HASH) -> AuditEvent | None:
    """The first event, in id order, whose hash or link does not match; None when intact.

    `start_hash` is the link the first event must carry: the genesis hash for the whole
    chain, or the first event's own previous_hash to check only a window of it.
    """
    previous = start_hash
    for event in events:
        if event.previous_hash != previous or event.hash != _expected_hash(event):
            return event
        previous = event.hash
    return None


# --- Anchors: detect deletion of the newest events -----------------------------------------
#
# The chain cannot tell that its newest events were deleted: what is left is a valid,
# shorter chain. An anchor records the head (last id, its hash, the number of events) at a
# point in time, signed with HMAC-SHA256 under PORTAL_AUDIT_ANCHOR_KEY and written outside
# the database (an append-only file, and a logger that syslog can ship off-host). Later,
# every anchored head must still be in the chain with as many events up to it.

anchor_logger = logging.getLogger("portal.audit.anchor")
ANCHOR_VERSION = 1


@dataclass(frozen=True)
class AuditAnchor:
    last_id: int
    hash: str
    count: int
    timestamp: str

    def payload(self) -> dict:
        return {
            "v": ANCHOR_VERSION, "last_id": self.last_id, "hash": self.hash, "count": self.count,
            "timestamp": self.timestamp,
        }


class AnchorError(ValueError):
    """An anchor line that cannot be read or whose signature does not match."""


def _anchor_mac(payload: dict, key: str) -> str:
    message = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def anchor_line(anchor: AuditAnchor, *, key: str) -> str:
    payload = anchor.payload()
    return json.dumps({**payload, "hmac": _anchor_mac(payload, key)}, sort_keys=True, separators=(",", ":"))


def anchor_parse(line: str, *, key: str) -> AuditAnchor:
    try:
        data = json.loads(line)
        payload = {name: data[name] for name in ("v", "last_id", "hash", "count", "timestamp")}
        mac = data["hmac"]
    except (ValueError, KeyError, TypeError):
        raise AnchorError("not an audit anchor") from None
    if not isinstance(mac, str) or not hmac.compare_digest(mac, _anchor_mac(payload, key)):
        raise AnchorError("signature does not match (forged, altered, or signed with another key)")
    if payload["v"] != ANCHOR_VERSION or not all(isinstance(payload[name], int) for name in ("last_id", "count")):
        raise AnchorError("unknown anchor version or malformed fields")
    return AuditAnchor(
        last_id=payload["last_id"], hash=payload["hash"], count=payload["count"], timestamp=payload["timestamp"]
    )


def anchors_read(path, *, key: str) -> list[tuple[int, AuditAnchor | AnchorError]]:
    """(line number, anchor or the reason it is unusable) for each non-empty line of the file."""
    result: list[tuple[int, AuditAnchor | AnchorError]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                result.append((number, anchor_parse(line, key=key)))
            except AnchorError as exc:
                result.append((number, exc))
    return result


@dataclass
class AuditVerification:
    count: int = 0
    broken: AuditEvent | None = None
    problems: list[str] = field(default_factory=list)  # anchors that no longer hold

    @property
    def ok(self) -> bool:
        return self.broken is None and not self.problems


def audit_verify(
    events: Iterable[AuditEvent], *, anchors: Iterable[tuple[int, AuditAnchor | AnchorError]] = ()
) -> AuditVerification:
    """One pass over the events in id order: the first broken link, and every anchor that no longer holds."""
    anchors = list(anchors)
    wanted = {anchor.last_id for _, anchor in anchors if isinstance(anchor, AuditAnchor)}
    seen: dict[int, tuple[str, int]] = {}  # anchored id -> (hash, events up to and including it)
    result = AuditVerification()
    previous = GENESIS_HASH
    for event in events:
        result.count += 1
        if result.broken is None and (event.previous_hash != previous or event.hash != _expected_hash(event)):
            result.broken = event
        previous = event.hash
        if event.pk in wanted:
            seen[event.pk] = (event.hash, result.count)
    for number, anchor in anchors:
        if isinstance(anchor, AnchorError):
            result.problems.append(f"anchor line {number}: {anchor}")
            continue
        where = f"anchor line {number} ({anchor.timestamp}: {anchor.count} events, head #{anchor.last_id})"
        if anchor.last_id == 0:
            continue  # anchored an empty log: nothing can be missing from it
        if anchor.last_id not in seen:
            result.problems.append(f"{where}: event #{anchor.last_id} is missing; the log has {result.count} events")
            continue
        head_hash, count = seen[anchor.last_id]
        if head_hash != anchor.hash:
            result.problems.append(f"{where}: event #{anchor.last_id} has another hash than was anchored")
        if count != anchor.count:
            result.problems.append(f"{where}: {count} events up to #{anchor.last_id}, {anchor.count} were anchored")
    return result
