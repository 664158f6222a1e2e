"""Key recovery under dual control: request, approvals, completion by an agent, pickup.

A recovery request names one certificate, or an employee (all their escrowed keys, the
"key history"). It needs `required_approvals` approvals from distinct approvers, none of
them the requester, the keys' owner or the recipient; one rejection ends it. A key
recovery agent then completes it with their PKCS#12, which is used in memory for this
request only: the recovered keys are sealed for the designated recipient (`pickups`), who
downloads them as PKCS#12 with a passphrase of their own until the pickup expires. Every step is an audit event;
the owner, the approvers and the agents are told by mail (enrollment.notifications).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from audit.events import AuditAction
from audit.services import audit_record
from core.db import retry_on_conflict, unique_conflicts
from core.exceptions import InvalidState, NotAllowed, NotFound, SeparationOfDuties
from enrollment.models import Certificate, Employee
from enrollment.notifications.services import (
    notify_recovery_approved,
    notify_recovery_completed,
    notify_recovery_expired,
    notify_recovery_rejected,
    notify_recovery_requested,
)
from enrollment.pki.serials import normalize_serial
from enrollment.roles import APPROVERS

from ..models import RecoveryDecision, RecoveryRequest
from ..selectors import escrowed_certificates, recovery_certificates
from .agents import agent_credential_load
from .escrow import escrow_record_open
from .pickups import recovered_keys_seal

Status = RecoveryRequest.Status
Purpose = RecoveryRequest.Purpose
OPEN_STATES = (Status.PENDING, Status.APPROVED)


def _open_requests():
    """Pending requests, and approved ones whose approval has not expired."""
    return RecoveryRequest.objects.filter(
        Q(status=Status.PENDING) | Q(status=Status.APPROVED, approval_expires_at__gt=timezone.now())
    )


def is_recovery_approver(user) -> bool:
    """Only members of the Approvers group decide recoveries: a superuser is not implicitly one."""
    return bool(
        user.is_active
        and user.groups.filter(name=APPROVERS).exists()
        and user.has_perm("escrow.approve_recoveryrequest")
    )


# --- Request -------------------------------------------------------------------------------------


def _active_user(username: str, *, field: str):
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ValidationError({field: f"There is no active user {username!r}."})
    return user


def _stale_approvals_expire(*, employee, certificate, recipient) -> None:
    """Approvals of these keys for this recipient that ran out but the periodic job has not marked yet.

    They are closed for the rule and for `_open_requests`, but still open for the database's
    one-open-recovery index: mark them expired now, as `recoveries_expire` would.
    """
    stale = RecoveryRequest.objects.select_for_update(no_key=True).filter(
        employee=employee, certificate=certificate, recipient=recipient,
        status=Status.APPROVED, approval_expires_at__lte=timezone.now(),
    )
    for request in stale.order_by("pk"):
        request.status = Status.EXPIRED
        request.save(update_fields=["status"])
        audit_record(
            action=AuditAction.RECOVERY_EXPIRED,
            obj=request,
            details={"approval_expired_at": request.approval_expires_at.isoformat()},
        )
        notify_recovery_expired(recovery=request)


@retry_on_conflict
@transaction.atomic
def recovery_request_create(
    *,
    requested_by,
    reason: str,
    serial: str = "",
    employee_username: str = "",
    recipient_username: str = "",
    purpose: str = "",
) -> RecoveryRequest:
    """A pending recovery request of one certificate's key (`serial`) or of all of an
    employee's escrowed keys (`employee_username`).

    Employees may request their own keys (for themselves); PKI administrators any key
    (`escrow.request_recovery`, purpose admin); auditors any key for legal hold
    (`escrow.request_legal_hold`). Anyone else learns nothing about others' keys (NotFound).
    """
    reason = (reason or "").strip()
    serial = normalize_serial(serial)
    employee_username = (employee_username or "").strip()
    errors = {}
    if not reason:
        errors["reason"] = "Say why the key must be recovered."
    if bool(serial) == bool(employee_username):
        errors["certificate"] = "Name either a certificate (its serial) or an employee (all their escrowed keys)."
    if errors:
        raise ValidationError(errors)

    certificate = None
    if serial:
        certificate = Certificate.objects.select_related("employee__user").filter(serial=serial).first()
        employee = certificate.employee if certificate else None
        not_found = NotFound(f"There is no certificate with serial {serial}.")
    else:
        employee = Employee.objects.select_related("user").filter(user__username=employee_username).first()
        not_found = NotFound(f"There is no employee {employee_username!r}.")
    own = employee is not None and employee.user_id == requested_by.pk
    allowed = [Purpose.OWN_KEY] if own else []
    if requested_by.has_perm("escrow.request_recovery"):
        allowed.append(Purpose.ADMIN)
    if requested_by.has_perm("escrow.request_legal_hold"):
        allowed.append(Purpose.LEGAL_HOLD)
    if employee is None or not allowed or not requested_by.is_active:
        raise not_found
    if not purpose:
        purpose = allowed[0]
    elif purpose not in Purpose.values:
        raise ValidationError({"purpose": f"Choose one of {', '.join(Purpose.values)}."})
    elif purpose not in allowed:
        raise NotAllowed(f"You may not request a key recovery with the purpose {purpose}.")

    if certificate is not None and not hasattr(certificate, "escrow"):
        raise ValidationError(
            {"certificate": f"The key of certificate {certificate.serial} was not escrowed; it cannot be recovered."}
        )
    if certificate is None and not escrowed_certificates(employee).exists():
        raise ValidationError({"employee": f"{employee.mail} has no escrowed keys."})

    if purpose == Purpose.OWN_KEY:
        if recipient_username and recipient_username != requested_by.get_username():
            raise ValidationError({"recipient": "Your own key can only be recovered for you."})
        recipient = requested_by
    elif purpose == Purpose.LEGAL_HOLD:
        # Legal hold: the keys go to the auditor who asked, never to someone they name.
        if recipient_username and recipient_username != requested_by.get_username():
            raise ValidationError({"recipient": "Keys recovered for legal hold go to you, who requested them, only."})
        recipient = requested_by
    elif recipient_username:
        recipient = _active_user(recipient_username, field="recipient")
    else:
        recipient = employee.user  # e.g. the help desk files it for an employee who lost their key

    # One open recovery per keys and recipient: the owner's row is locked first (core/db.py), so two
    # parallel requests queue here and the second finds the first; the database's index backs it.
    Employee.objects.select_for_update(no_key=True).filter(pk=employee.pk).first()
    _stale_approvals_expire(employee=employee, certificate=certificate, recipient=recipient)
    duplicate = _open_requests().filter(employee=employee, certificate=certificate, recipient=recipient).first()
    if duplicate is not None:
        raise ValidationError(f"Recovery request #{duplicate.pk} for these keys and this recipient is open already.")

    request = RecoveryRequest(
        certificate=certificate,
        employee=employee,
        purpose=purpose,
        reason=reason,
        requested_by=requested_by,
        recipient=recipient,
        required_approvals=settings.PORTAL_RECOVERY_APPROVALS,
    )
    request.full_clean()
    with unique_conflicts(RecoveryRequest):
        request.save()
    audit_record(
        action=AuditAction.RECOVERY_REQUESTED,
        actor=requested_by,
        obj=request,
        details={
            "certificate": certificate.serial if certificate else None,
            "employee": employee.user.get_username(),
            "purpose": purpose,
            "recipient": recipient.get_username(),
            "reason": reason,
            "required_approvals": request.required_approvals,
        },
    )
    notify_recovery_requested(recovery=request)
    return request


# --- Decisions -----------------------------------------------------------------------------------


def _request_for_decision(*, request_id: int, approver) -> RecoveryRequest:
    if not is_recovery_approver(approver):
        raise NotAllowed("You are not allowed to approve or reject key recovery requests (only members of Approvers are).")
    request = (
        RecoveryRequest.objects.select_for_update(of=("self",))
        .select_related("employee__user", "certificate", "requested_by", "recipient")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        raise NotFound(f"There is no recovery request #{request_id}.")
    if approver.pk == request.requested_by_id:
        raise SeparationOfDuties(f"You cannot decide recovery request #{request.pk}: you made it (separation of duties).")
    if approver.pk == request.employee.user_id:
        raise SeparationOfDuties(
            f"You cannot decide recovery request #{request.pk}: the keys are yours (separation of duties)."
        )
    if approver.pk == request.recipient_id:
        raise SeparationOfDuties(
            f"You cannot decide recovery request #{request.pk}: the keys would go to you (separation of duties)."
        )
    if request.status != Status.PENDING:
        raise InvalidState(f"Recovery request #{request.pk} is {request.status}, not pending.")
    earlier = request.decisions.filter(approver=approver).first()
    if earlier is not None:
        raise SeparationOfDuties(
            f"You decided recovery request #{request.pk} already ({earlier.decision}); "
            "each approval must come from a different approver."
        )
    return request


@transaction.atomic
def recovery_request_approve(*, request_id: int, approver, comment: str = "") -> RecoveryRequest:
    """One approval; the request is approved once it has `required_approvals` of them."""
    request = _request_for_decision(request_id=request_id, approver=approver)
    comment = (comment or "").strip()
    RecoveryDecision.objects.create(
        request=request, approver=approver, decision=RecoveryDecision.Decision.APPROVE, comment=comment
    )
    approvals = request.decisions.filter(decision=RecoveryDecision.Decision.APPROVE).count()
    if approvals >= request.required_approvals:
        request.status = Status.APPROVED
        request.decided_at = timezone.now()
        request.approval_expires_at = request.decided_at + timedelta(days=settings.PORTAL_RECOVERY_APPROVAL_DAYS)
        request.save(update_fields=["status", "decided_at", "approval_expires_at"])
    audit_record(
        action=AuditAction.RECOVERY_APPROVED,
        actor=approver,
        obj=request,
        details={
            "comment": comment,
            "approvals": approvals,
            "required_approvals": request.required_approvals,
            "status": request.status,
        },
    )
    notify_recovery_approved(recovery=request)
    return request


@transaction.atomic
def recovery_request_reject(*, request_id: int, approver, comment: str) -> RecoveryRequest:
    """One rejection ends the request."""
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError({"comment": "Say why the recovery is rejected."})
    request = _request_for_decision(request_id=request_id, approver=approver)
    RecoveryDecision.objects.create(
        request=request, approver=approver, decision=RecoveryDecision.Decision.REJECT, comment=comment
    )
    request.status = Status.REJECTED
    request.decided_at = timezone.now()
    request.save(update_fields=["status", "decided_at"])
    audit_record(action=AuditAction.RECOVERY_REJECTED, actor=approver, obj=request, details={"comment": comment})
    notify_recovery_rejected(recovery=request)
    return request


# --- Completion by a key recovery agent ----------------------------------------------------------


@transaction.atomic
@sensitive_variables("agent_pkcs12", "passphrase", "credential", "key")
def recovery_request_complete(*, request_id: int, agent, agent_pkcs12: bytes, passphrase: str) -> RecoveryRequest:
    """Decrypt the escrowed keys with the agent's uploaded PKCS#12 and seal them for the recipient.

    The agent's key lives in memory for this call only; nothing of it is stored or logged.
    """
    if not (agent.is_active and agent.has_perm("escrow.complete_recoveryrequest")):
        raise NotAllowed("Only key recovery agents can complete key recovery requests.")
    request = (
        RecoveryRequest.objects.select_for_update(of=("self",))
        .select_related("employee__user", "certificate", "recipient", "requested_by")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        raise NotFound(f"There is no recovery request #{request_id}.")
    if agent.pk in (request.requested_by_id, request.employee.user_id, request.recipient_id):
        raise SeparationOfDuties(
            f"You cannot complete recovery request #{request.pk}: you made it, the keys are yours or "
            "they would go to you (separation of duties)."
        )
    if request.status != Status.APPROVED:
        raise InvalidState(f"Recovery request #{request.pk} is {request.status}, not approved.")
    if request.approval_expires_at is not None and request.approval_expires_at <= timezone.now():
        raise InvalidState(
            f"The approval of recovery request #{request.pk} expired on {request.approval_expires_at:%Y-%m-%d %H:%M} UTC; "
            "a new request is needed."
        )
    if request.decisions.filter(approver=agent).exists():
        raise SeparationOfDuties(
            f"You cannot complete recovery request #{request.pk}: you decided it (separation of duties)."
        )
    credential = agent_credential_load(pkcs12_data=agent_pkcs12, passphrase=passphrase)
    if credential.agent.user_id is not None and credential.agent.user_id != agent.pk:
        raise NotAllowed(f"The agent credential {credential.agent.name} belongs to another account.")
    if not credential.agent.is_active:
        raise InvalidState(f"The key recovery agent {credential.agent.name} is deactivated.")

    certificates = recovery_certificates(request)
    keys, problems = [], []
    for certificate in certificates:
        try:
            keys.append((certificate, escrow_record_open(record=certificate.escrow, credential=credential)))
        except InvalidState as exc:
            problems.append(exc.message)
    if problems:
        raise InvalidState(" ".join(problems) + " Ask an agent the escrow is encrypted to, or run rewrap_escrow.")
    if not keys:
        raise InvalidState(f"Recovery request #{request.pk} covers no escrowed key.")

    expires_at = recovered_keys_seal(request=request, keys=keys)
    request.status = Status.COMPLETED
    request.completed_at = timezone.now()
    request.completed_by = agent
    request.save(update_fields=["status", "completed_at", "completed_by"])
    serials = [certificate.serial for certificate, _ in keys]
    audit_record(
        action=AuditAction.RECOVERY_COMPLETED,
        actor=agent,
        obj=request,
        details={
            "certificates": serials,
            "agent": credential.agent.fingerprint_sha256,
            "recipient": request.recipient.get_username(),
            "pickup_expires_at": expires_at.isoformat(),
        },
    )
    notify_recovery_completed(recovery=request, expires_at=expires_at)
    return request
