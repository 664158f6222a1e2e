"""The audit log's hash chain, its anchors and its verification: no writes, no locks.

Each event's hash covers its content and the previous event's hash, so editing,
deleting or inserting a row breaks the chain at that point. Since audit 0002 the hash is
keyed: HMAC-SHA256 under a chain key that is not in the database (keys.py), with the key's
id stored in the event (`key_id`) and hashed too. Whoever can only write to the database can
no longer append an event that verifies. Anchors (signed heads written outside the
database) and the event sink (sink.py) show when the newest events were deleted.

The rules, in id order:
- an event with a key id: HMAC-SHA256(key[key_id], content) with "key_id" in the content;
- an event without one (key_id ""): the unkeyed rule of before audit 0002, plain SHA-256 of
  the content. Such events are valid only as the chain's prefix, sealed by the keyed
  `audit.chain_keyed` event that audit 0002 appended (the recorded switch point); an unkeyed
  event after a keyed one, or unkeyed events that no switch event seals, are forgeries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .keys import ChainKeyError, ChainKeyring, chain_keyring

if TYPE_CHECKING:
    from .models import AuditEvent

GENESIS_HASH = "0" * 64
# The event audit 0002 appends after the unkeyed events of an existing chain (events.py has it too).
CHAIN_KEYED_ACTION = "audit.chain_keyed"


def _content(
    *, timestamp, actor_id, actor_name, action, object_type, object_id, source_ip, details, previous_hash, **keyed
) -> bytes:
    return json.dumps(
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
            **keyed,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode()


def event_hash(
    *, timestamp, actor_id, actor_name, action, object_type, object_id, source_ip, details, previous_hash
) -> str:
    """The unkeyed rule (events before audit 0002): SHA-256 of the canonical JSON content."""
    return hashlib.sha256(
        _content(
            timestamp=timestamp,
            actor_id=actor_id,
            actor_name=actor_name,
            action=action,
            object_type=object_type,
            object_id=object_id,
            source_ip=source_ip,
            details=details,
            previous_hash=previous_hash,
        )
    ).hexdigest()


def event_mac(*, key_id: str, keyring: ChainKeyring | None = None, **fields) -> str:
    """The keyed rule: HMAC-SHA256 under the key `key_id` of the same content plus the key id."""
    keyring = keyring if keyring is not None else chain_keyring()
    return keyring.mac(key_id, _content(**fields, key_id=key_id))


def event_fields(event: AuditEvent) -> dict:
    """What an event's hash covers besides its key id, read from the event."""
    return dict(
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


class _ChainCheck:
    """Feed the events in id order; the first that breaks a rule, and why."""

    def __init__(
        self, *, start_hash: str, keyring: ChainKeyring | None, keyed: bool = False,
        first_unsealed: AuditEvent | None = None,
    ):
        # `keyed` and `first_unsealed`: the state at the end of a prefix verified before (verification.py).
        self.previous = start_hash
        self.keyring = keyring
        self.first_unsealed = first_unsealed  # first unkeyed event not (yet) sealed by the switch
        self.keyed = keyed
        self.first_keyed: AuditEvent | None = None
        self.key_ids: set[str] = set()

    def feed(self, event: AuditEvent) -> str | None:
        link_ok = event.previous_hash == self.previous
        self.previous = event.hash
        if not link_ok:
            return "its link to the previous event does not match (an event before it was deleted, or it was inserted)"
        if not event.key_id:
            if self.keyed:
                return (
                    "it carries the unkeyed hash of before the keyed chain, after the switch to it: "
                    "not written by the portal (a forgery by someone without the chain key)"
                )
            if event.hash != event_hash(**event_fields(event)):
                return "its hash does not match its content (edited)"
            self.first_unsealed = self.first_unsealed or event
            return None
        keyring = self.keyring if self.keyring is not None else chain_keyring()
        if event.key_id not in keyring:
            raise ChainKeyError(
                f"it was hashed with chain key id {event.key_id!r}, which is not configured "
                f"(configured: {', '.join(keyring.ids)}; add the old key to PORTAL_AUDIT_CHAIN_RETIRED_KEYS as "
                f"{event.key_id}:KEY)"
            )
        if not hmac.compare_digest(event.hash, event_mac(key_id=event.key_id, keyring=keyring, **event_fields(event))):
            return f"its HMAC does not match: edited, or written without the chain key {event.key_id!r} (a forgery)"
        if self.first_unsealed is not None and not self.keyed and event.action != CHAIN_KEYED_ACTION:
            return f"it is the first keyed event after unkeyed ones, but no {CHAIN_KEYED_ACTION} switch event"
        self.first_unsealed = None
        self.first_keyed = self.first_keyed or event
        self.keyed = True
        self.key_ids.add(event.key_id)
        return None

    def finish(self) -> tuple[AuditEvent, str] | None:
        if self.first_unsealed is not None:
            return self.first_unsealed, (
                f"unkeyed events from here to the end, with no keyed {CHAIN_KEYED_ACTION} switch event sealing them: "
                "written without the chain key (a forgery, or a log rebuilt from nothing)"
            )
        return None


def audit_chain_breaks(
    events: Iterable[AuditEvent], *, start_hash: str = GENESIS_HASH, keyring: ChainKeyring | None = None
) -> AuditEvent | None:
    """The first event, in id order, whose hash, key or link does not match; None when intact.

    `start_hash` is the link the first event must carry: the genesis hash for the whole
    chain, or the first event's own previous_hash to check only a window of it that ends at
    the newest event.
    """
    check = _ChainCheck(start_hash=start_hash, keyring=keyring)
    for event in events:
        try:
            if check.feed(event) is not None:
                return event
        except ChainKeyError:
            return event
    unsealed = check.finish()
    return unsealed[0] if unsealed else None


@dataclass
class ChainProgress:
    """How far a check of the chain's continuation got: the last event that verified, the first that did not."""

    checked: int = 0
    last: AuditEvent | None = None  # the newest event that verified
    keyed: bool = False  # the check's state after `last`, to continue from it
    first_unsealed: AuditEvent | None = None
    broken: AuditEvent | None = None
    reason: str = ""
    unverifiable: bool = False  # `broken` names a key id that is not configured: not proof of tampering


def audit_chain_continue(
    events: Iterable[AuditEvent], *, start_hash: str, keyed: bool = False, first_unsealed: AuditEvent | None = None,
    at_head: bool, keyring: ChainKeyring | None = None,
) -> ChainProgress:
    """Verify `events`, in id order, as the continuation of a prefix verified before.

    `start_hash` is the hash of the prefix's last event (the genesis hash for none), `keyed`
    and `first_unsealed` the check's state there (ChainProgress of the previous run).
    `at_head`: the events end with the newest one, so that unkeyed events no switch event
    sealed by then are a forgery; otherwise a later run may still see the switch.
    """
    check = _ChainCheck(start_hash=start_hash, keyring=keyring, keyed=keyed, first_unsealed=first_unsealed)
    progress = ChainProgress(keyed=keyed, first_unsealed=first_unsealed)
    for event in events:
        progress.checked += 1
        try:
            reason = check.feed(event)
        except ChainKeyError as exc:
            reason, progress.unverifiable = str(exc), True
        if reason is not None:
            progress.broken, progress.reason = event, reason
            return progress
        progress.last, progress.keyed, progress.first_unsealed = event, check.keyed, check.first_unsealed
    if at_head and (unsealed := check.finish()) is not None:
        progress.broken, progress.reason = unsealed
    return progress


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
            "v": ANCHOR_VERSION,
            "last_id": self.last_id,
            "hash": self.hash,
            "count": self.count,
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
    reason: str = ""  # why `broken` is broken
    unverifiable: bool = False  # `broken` names a key id that is not configured: not proof of tampering
    problems: list[str] = field(default_factory=list)  # anchors (and sink lines) that no longer hold
    first_keyed_id: int | None = None
    key_ids: list[str] = field(default_factory=list)
    last_anchor: AuditAnchor | None = None  # the newest anchor that holds, by its head
    verified_through: AuditEvent | None = None  # the newest event before `broken` (all of them when intact)
    keyed: bool = False  # the check's state after `verified_through` (ChainProgress)
    first_unsealed: AuditEvent | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None and not self.problems


def audit_verify(
    events: Iterable[AuditEvent],
    *,
    anchors: Iterable[tuple[int, AuditAnchor | AnchorError]] = (),
    keyring: ChainKeyring | None = None,
) -> AuditVerification:
    """One pass over the events in id order: the first broken link, and every anchor that no longer holds."""
    anchors = list(anchors)
    wanted = {anchor.last_id for _, anchor in anchors if isinstance(anchor, AuditAnchor)}
    seen: dict[int, tuple[str, int]] = {}  # anchored id -> (hash, events up to and including it)
    result = AuditVerification()
    check = _ChainCheck(start_hash=GENESIS_HASH, keyring=keyring)
    for event in events:
        result.count += 1
        if result.broken is None:
            try:
                reason = check.feed(event)
            except ChainKeyError as exc:
                reason, result.unverifiable = str(exc), True
            if reason is not None:
                result.broken, result.reason = event, reason
            else:
                result.verified_through, result.keyed = event, check.keyed
                result.first_unsealed = check.first_unsealed
        if event.pk in wanted:
            seen[event.pk] = (event.hash, result.count)
    if result.broken is None and (unsealed := check.finish()) is not None:
        result.broken, result.reason = unsealed
    result.first_keyed_id = check.first_keyed.pk if check.first_keyed is not None else None
    result.key_ids = sorted(check.key_ids)
    for number, anchor in anchors:
        if isinstance(anchor, AnchorError):
            result.problems.append(f"anchor line {number}: {anchor}")
            continue
        where = f"anchor line {number} ({anchor.timestamp}: {anchor.count} events, head #{anchor.last_id})"
        holds = True
        if anchor.last_id == 0:
            pass  # anchored an empty log: nothing can be missing from it
        elif anchor.last_id not in seen:
            result.problems.append(f"{where}: event #{anchor.last_id} is missing; the log has {result.count} events")
            continue
        else:
            head_hash, count = seen[anchor.last_id]
            if head_hash != anchor.hash:
                result.problems.append(f"{where}: event #{anchor.last_id} has another hash than was anchored")
                holds = False
            if count != anchor.count:
                result.problems.append(f"{where}: {count} events up to #{anchor.last_id}, {anchor.count} were anchored")
                holds = False
        if holds and (result.last_anchor is None or anchor.last_id >= result.last_anchor.last_id):
            result.last_anchor = anchor
    return result
