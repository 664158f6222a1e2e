"""Ending an open key recovery without completion: withdrawn by the requester, the owner or an
approver, or expired when no agent completed it within PORTAL_RECOVERY_APPROVAL_DAYS."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record
from core.exceptions import InvalidState, NotAllowed, NotFound
from enrollment.notifications.services import notify_recovery_expired, notify_recovery_withdrawn

from ..models import RecoveryRequest
from .recovery import OPEN_STATES, Status, is_recovery_approver


def _may_withdraw(user, request: RecoveryRequest) -> bool:
    return user.is_active and (
        user.pk in (request.requested_by_id, request.employee.user_id) or is_recovery_approver(user)
    )


@transaction.atomic
def recovery_request_withdraw(*, request_id: int, actor, reason: str) -> RecoveryRequest:
    """Withdraw a pending or approved request: by its requester, the keys' owner or an approver."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the recovery is withdrawn."})
    request = (
        RecoveryRequest.objects.select_for_update(of=("self",))
        .select_related("employee__user", "certificate", "requested_by", "recipient")
        .filter(pk=request_id)
        .first()
    )
    if request is None or not (_may_withdraw(actor, request) or actor.has_perm("escrow.view_recoveryrequest")):
        raise NotFound(f"There is no recovery request #{request_id}.")
    if not _may_withdraw(actor, request):
        raise NotAllowed("Only the requester, the keys' owner or an approver can withdraw a recovery request.")
    if request.status not in OPEN_STATES:
        raise InvalidState(f"Recovery request #{request.pk} is {request.status}; only open requests can be withdrawn.")
    previous = request.status
    request.status = Status.WITHDRAWN
    request.withdrawn_at = timezone.now()
    request.withdrawn_by = actor
    request.save(update_fields=["status", "withdrawn_at", "withdrawn_by"])
    audit_record(
        action=AuditAction.RECOVERY_WITHDRAWN,
        actor=actor,
        obj=request,
        details={"reason": reason, "was": previous},
    )
    notify_recovery_withdrawn(recovery=request, actor=actor, reason=reason)
    return request


def recoveries_expire(*, now=None) -> int:
    """Mark approved recoveries that no agent completed in time expired (each in its own transaction)."""
    now = now or timezone.now()
    due = RecoveryRequest.objects.filter(status=Status.APPROVED, approval_expires_at__lte=now)
    count = 0
    for request_id in list(due.values_list("pk", flat=True)):
        with transaction.atomic():
            request = (
                RecoveryRequest.objects.select_for_update()
                .filter(pk=request_id, status=Status.APPROVED, approval_expires_at__lte=now)
                .first()
            )
            if request is None:
                continue
            request.status = Status.EXPIRED
            request.save(update_fields=["status"])
            audit_record(
                action=AuditAction.RECOVERY_EXPIRED,
                obj=request,
                details={"approval_expired_at": request.approval_expires_at.isoformat()},
            )
            notify_recovery_expired(recovery=request)
        count += 1
    return count
