"""The audit chain's health for the admin dashboard, bounded whatever the size of the log.

Verifying the whole chain on every view would grow with the log; the dashboard reads what
the chain checks stored (audit_chain_verification: the verified point, a break, the last full
re-verification; audit/verification.py) and checks the newest anchor (audit_checkpoint's last line): still signed with the anchor key, its head still in
the chain with the same hash and as many events up to it. `manage.py verify_audit_log
--anchors` checks everything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings

from .chain import AnchorError, AuditAnchor, anchor_parse
from .models import AuditEvent
from .selectors import ChainVerification, audit_chain_verification

_LAST_LINE_BYTES = 4096  # an anchor line is about 200 bytes


@dataclass(frozen=True)
class CheckpointStatus:
    anchor: AuditAnchor | None
    problem: str  # empty when the newest anchor holds

    @property
    def holds(self) -> bool:
        return self.anchor is not None and not self.problem


@dataclass(frozen=True)
class AuditSummary:
    chain: ChainVerification
    last_event_at: datetime | None
    checkpoint: CheckpointStatus


def _last_line(path: Path) -> str | None:
    """The file's last non-empty line, read from its end (the anchor file only grows)."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - _LAST_LINE_BYTES))
        lines = [line for line in handle.read().splitlines() if line.strip()]
    return lines[-1].decode("utf-8", errors="replace") if lines else None


def _anchor_holds(anchor: AuditAnchor) -> str:
    """Why the anchored head no longer matches the log; empty when it does. Two indexed queries."""
    if anchor.last_id == 0:
        return ""
    head_hash = AuditEvent.objects.filter(pk=anchor.last_id).values_list("hash", flat=True).first()
    if head_hash is None:
        return f"the anchored event #{anchor.last_id} is missing from the log"
    if head_hash != anchor.hash:
        return f"event #{anchor.last_id} has another hash than was anchored"
    count = AuditEvent.objects.filter(id__lte=anchor.last_id).count()
    if count != anchor.count:
        return f"{count} events up to #{anchor.last_id}, {anchor.count} were anchored"
    return ""


def audit_checkpoint_status(*, path=None, key: str | None = None) -> CheckpointStatus:
    key = key if key is not None else settings.PORTAL_AUDIT_ANCHOR_KEY
    path = Path(path if path is not None else settings.PORTAL_AUDIT_ANCHOR_FILE)
    if not key:
        return CheckpointStatus(anchor=None, problem="PORTAL_AUDIT_ANCHOR_KEY is not set: no checkpoints")
    try:
        line = _last_line(path)
    except FileNotFoundError:
        line = None
    except OSError as exc:
        return CheckpointStatus(anchor=None, problem=f"the anchor file cannot be read ({exc.strerror})")
    if line is None:
        return CheckpointStatus(anchor=None, problem="no checkpoint yet (manage.py audit_checkpoint)")
    try:
        anchor = anchor_parse(line, key=key)
    except AnchorError as exc:
        return CheckpointStatus(anchor=None, problem=f"the newest anchor is unusable: {exc}")
    return CheckpointStatus(anchor=anchor, problem=_anchor_holds(anchor))


def audit_dashboard_summary(*, anchor_path=None) -> AuditSummary:
    return AuditSummary(
        chain=audit_chain_verification(),
        last_event_at=AuditEvent.objects.order_by("-id").values_list("timestamp", flat=True).first(),
        checkpoint=audit_checkpoint_status(path=anchor_path),
    )
