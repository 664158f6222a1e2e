"""Reads of the audit log as auditors see it: the events in chain order and the chain's status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.db.models import QuerySet
from django.utils import timezone

from .chain import audit_chain_breaks
from .models import AuditChainState, AuditEvent

# `audit_chain_status` verifies the newest this many events now (bench/run.py checks the whole chain with it).
AUDIT_ADMIN_VERIFY_LIMIT = 500
# The events newer than the verified point are counted up to this many ("more than ...").
UNCHECKED_COUNT_CAP = 10_000


def audit_log_visible_to(*, user) -> bool:
    """Auditors (and superusers) read the audit log; nobody else, in the admin or the API."""
    return bool(user is not None and user.is_active and user.has_perm("audit.view_auditevent"))


# Rows whose creation is always an audit event (ca.created, certificate.issued, ...): while any
# exists, an empty audit log was emptied. By label: the audit app imports no other app.
AUDITED_MODELS = (
    "enrollment.CertificateAuthority",
    "enrollment.Certificate",
    "enrollment.CertificateRequest",
    "escrow.KeyRecoveryAgent",
    "escrow.EscrowRecord",
    "escrow.RecoveryRequest",
)


def audited_rows() -> dict[str, int]:
    """How many rows of each audited model exist (those with any), for the empty-log check."""
    counts = {}
    for label in AUDITED_MODELS:
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        if count := model._default_manager.count():
            counts[model._meta.label_lower] = count
    return counts


def audit_events() -> QuerySet[AuditEvent]:
    """Every event in id (= chain) order; the API's filters are audit.api.filters."""
    return AuditEvent.objects.order_by("id")


@dataclass(frozen=True)
class ChainStatus:
    count: int
    checked: int
    broken_at: int | None

    @property
    def intact(self) -> bool:
        return self.broken_at is None

    def __str__(self) -> str:
        verdict = "intact" if self.intact else f"broken at #{self.broken_at}"
        if self.checked < self.count:
            return f"{verdict} (newest {self.checked} of {self.count} events; manage.py verify_audit_log checks all)"
        return f"{verdict} ({self.count} events)"


def audit_chain_status(*, limit: int = AUDIT_ADMIN_VERIFY_LIMIT) -> ChainStatus:
    """Verify the chain, streaming; for a long log, the newest `limit` events and their links."""
    count = AuditEvent.objects.count()
    if count <= limit:
        broken = audit_chain_breaks(AuditEvent.objects.order_by("id").iterator(chunk_size=2000))
        return ChainStatus(count=count, checked=count, broken_at=broken.pk if broken else None)
    first_id = AuditEvent.objects.order_by("-id").values_list("id", flat=True)[limit - 1]
    window = AuditEvent.objects.filter(id__gte=first_id).order_by("id")
    start = window.values_list("previous_hash", flat=True).first()
    broken = audit_chain_breaks(window.iterator(chunk_size=2000), start_hash=start)
    return ChainStatus(count=count, checked=limit, broken_at=broken.pk if broken else None)


@dataclass(frozen=True)
class ChainVerification:
    """What the chain checks stored (audit/verification.py), as the admin and the dashboard show it."""

    verified_through_id: int
    verified_at: datetime | None
    unchecked: int  # events newer than the verified point, counted up to UNCHECKED_COUNT_CAP + 1
    broken_at: int | None
    broken_reason: str
    unverifiable: bool
    full_check_at: datetime | None
    full_check_events: int
    full_check_intact: bool

    @property
    def intact(self) -> bool:
        return self.broken_at is None

    def __str__(self) -> str:
        if not self.intact:
            verdict = "broken" if not self.unverifiable else "cannot be verified"
            parts = [f"{verdict} at #{self.broken_at}: {self.broken_reason}"]
        elif self.verified_through_id:
            parts = [f"intact through event #{self.verified_through_id}" + _at(self.verified_at)]
        else:
            parts = ["intact (no event verified yet)" if self.unchecked else "intact (no events)"]
        if self.intact and self.unchecked:
            many = f"more than {UNCHECKED_COUNT_CAP:,}" if self.unchecked > UNCHECKED_COUNT_CAP else f"{self.unchecked:,}"
            parts.append(f"{many} newer events not yet checked (the periodic job audit.chain_verify checks them)")
        if self.full_check_at is None:
            parts.append("no full re-verification yet (manage.py verify_audit_log, or the daily job)")
        else:
            verdict = "intact" if self.full_check_intact else "BROKEN"
            parts.append(f"last full re-verification{_at(self.full_check_at)}: {verdict}, {self.full_check_events:,} events")
        return "; ".join(parts)


def _at(moment: datetime | None) -> str:
    return f" at {timezone.localtime(moment):%Y-%m-%d %H:%M %Z}" if moment is not None else ""


def audit_chain_verification() -> ChainVerification:
    """The stored verdict and how many events are newer than its point: two indexed queries."""
    state = AuditChainState.objects.filter(pk=1).first() or AuditChainState()
    unchecked = 0
    if state.broken_id is None:
        newer = AuditEvent.objects.filter(id__gt=state.verified_through_id).order_by()
        unchecked = newer[: UNCHECKED_COUNT_CAP + 1].count()
    return ChainVerification(
        verified_through_id=state.verified_through_id,
        verified_at=state.verified_at,
        unchecked=unchecked,
        broken_at=state.broken_id,
        broken_reason=state.broken_reason,
        unverifiable=state.broken_unverifiable,
        full_check_at=state.full_check_at,
        full_check_events=state.full_check_events,
        full_check_intact=state.full_check_intact,
    )
