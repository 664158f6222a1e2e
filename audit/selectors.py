"""Reads of the audit log as auditors see it: the events in chain order and the chain's status."""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.db.models import QuerySet

from .chain import audit_chain_breaks
from .models import AuditEvent

# The admin verifies the chain on every changelist view; beyond this many events it checks
# the newest ones only and points at `manage.py verify_audit_log` for the whole chain. 500, as
# the dashboard: 5,000 cost about half a second per view at 50,000 events (issue 13); the
# keyed checkpoints and `verify_audit_log --anchors` cover what lies before the window.
AUDIT_ADMIN_VERIFY_LIMIT = 500


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
