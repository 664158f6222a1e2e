"""Key recovery under dual control: request, approvals, completion by an agent, pickup.

A recovery request names one certificate, or an employee (all their escrowed keys, the
"key history"). It needs `required_approvals` approvals from distinct approvers, none of
them the requester, the keys' owner or the recipient; one rejection ends it. A key
recovery agent then completes it with their PKCS#12, which is used in memory for this
request only: the recovered keys are sealed under the pickup KEK for the designated
recipient, who downloads them as PKCS#12 with a passphrase of their own until the pickup
expires. Every step is an audit event; the owner is told by mail.
"""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from core.exceptions import (
    ConfigurationError,
    InvalidState,
    NotAllowed,
    NotFound,
    PickupUnavailable,
    SeparationOfDuties,
)
from enrollment.models import Certificate, Employee
from enrollment.pki.keys import private_key_from_der, private_key_to_der
from enrollment.pki.pkcs12 import PKCS12_FORMATS, pkcs12_bundle
from enrollment.pki.serials import normalize_serial

from . import sealing
from audit.events import AuditAction
from audit.services import audit_record
from .models import RecoveryDecision, RecoveryPickup, RecoveryRequest
from core.mail import mail_on_commit

from .services import agent_credential_load, escrow_record_open

Status = RecoveryRequest.Status
Purpose = RecoveryRequest.Purpose
OPEN_STATES = (Status.PENDING, Status.APPROVED)


# --- Reads ------------------------------------------------------------------------------------


def recoveries_visible_to(*, user) -> QuerySet[RecoveryRequest]:
    """All requests for approvers, agents, auditors and PKI administrators; otherwise those
    the user made, receives or whose keys are theirs."""
    queryset = RecoveryRequest.objects.select_related(
        "certificate", "employee__user", "requested_by", "recipient", "completed_by"
    ).annotate(
        approvals=Count("decisions", filter=Q(decisions__decision=RecoveryDecision.Decision.APPROVE), distinct=True)
    ).order_by("-created_at", "-id")  # Meta.ordering does not apply to aggregating queries
    if user.has_perm("escrow.view_recoveryrequest"):
        return queryset
    return queryset.filter(Q(requested_by=user) | Q(recipient=user) | Q(employee__user=user))


def recovery_visible_to(*, user, request_id: int) -> RecoveryRequest:
    request = recoveries_visible_to(user=user).filter(pk=request_id).first()
    if request is None:
        raise NotFound(f"There is no recovery request #{request_id}.")
    return request


def recovery_certificates(request: RecoveryRequest) -> list[Certificate]:
    """The certificates whose escrowed keys the request covers, oldest first."""
    if request.certificate_id:
        return [request.certificate]
    return list(escrowed_certificates(request.employee))


def escrowed_certificates(employee: Employee) -> QuerySet[Certificate]:
    return (
        Certificate.objects.filter(employee=employee, escrow__isnull=False)
        .select_related("escrow", "issuer", "employee__user")
        .order_by("not_before", "pk")
    )


def open_pickups_of(*, user) -> QuerySet[RecoveryPickup]:
    return RecoveryPickup.objects.filter(recipient=user).open().order_by("request_id", "certificate__not_before")


# --- Mail ----------------------------------------------------------------------------------------


def _describe(request: RecoveryRequest) -> str:
    if request.certificate_id:
        return f"the key of your certificate {request.certificate.serial}"
    return "all of your escrowed keys"


def _notify_owner(request: RecoveryRequest, *, subject: str, text: str) -> None:
    employee = request.employee
    mail_on_commit(
        to=[employee.mail],
        subject=subject,
        body=(
            f"Hello {employee.display_name},\n\n{text}\n\n"
            f"Request #{request.pk} ({request.get_purpose_display()}), requested by "
            f"{request.requested_by.get_username()} for {request.recipient.get_username()}.\n"
            f"Reason: {request.reason}\n\n"
            "If you did not expect this, tell your PKI administrators or security team.\n"
        ),
    )


# --- Request -------------------------------------------------------------------------------------


def _active_user(username: str, *, field: str):
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ValidationError({field: f"There is no active user {username!r}."})
    return user


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
    elif recipient_username:
        recipient = _active_user(recipient_username, field="recipient")
    elif purpose == Purpose.ADMIN:
        recipient = employee.user  # e.g. the help desk files it for an employee who lost their key
    else:
        recipient = requested_by  # legal hold: the investigator

    duplicate = RecoveryRequest.objects.filter(
        employee=employee, certificate=certificate, recipient=recipient, status__in=OPEN_STATES
    ).first()
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
    _notify_owner(
        request,
        subject=f"Recovery of your S/MIME key requested (#{request.pk})",
        text=f"a recovery of {_describe(request)} has been requested. It needs "
        f"{request.required_approvals} approval(s) before a key recovery agent can carry it out.",
    )
    return request


# --- Decisions -----------------------------------------------------------------------------------


def _request_for_decision(*, request_id: int, approver) -> RecoveryRequest:
    if not (approver.is_active and approver.has_perm("escrow.approve_recoveryrequest")):
        raise NotAllowed("You are not allowed to approve or reject key recovery requests.")
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
        request.save(update_fields=["status", "decided_at"])
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
    return request


# --- Completion by a key recovery agent ----------------------------------------------------------


def _pickup_associated_data(*, request_id: int, serial: str, recipient_id: int) -> bytes:
    # Binds a sealed key to its request, certificate and recipient: moved elsewhere it won't open.
    return f"smime-portal recovery {request_id} {serial} {recipient_id}".encode()


def _pickup_kek() -> bytes:
    return sealing.derive_kek(settings.PORTAL_PICKUP_KEK)


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

    kek = _pickup_kek()
    expires_at = timezone.now() + timedelta(days=settings.PORTAL_PICKUP_DAYS)
    for certificate, key in keys:
        RecoveryPickup.objects.create(
            request=request,
            certificate=certificate,
            recipient=request.recipient,
            sealed_key=sealing.seal(
                plaintext=private_key_to_der(key),
                kek=kek,
                associated_data=_pickup_associated_data(
                    request_id=request.pk, serial=certificate.serial, recipient_id=request.recipient_id
                ),
            ),
            expires_at=expires_at,
        )
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
    _notify_owner(
        request,
        subject=f"Your S/MIME key was recovered (#{request.pk})",
        text=f"{_describe(request)} ({len(serials)} key(s)) "
        f"{'was' if len(serials) == 1 else 'were'} recovered by a key recovery agent for "
        f"{request.recipient.get_username()}, who can download {'it' if len(serials) == 1 else 'them'} "
        f"until {expires_at:%Y-%m-%d}.",
    )
    if request.recipient_id != request.employee.user_id and request.recipient.email:
        mail_on_commit(
            to=[request.recipient.email],
            subject=f"Recovered S/MIME keys ready for you (#{request.pk})",
            body=(
                f"Recovery request #{request.pk} is complete: {len(serials)} key(s) of {request.employee.mail} "
                f"wait for you on the self-service page until {expires_at:%Y-%m-%d}.\n"
            ),
        )
    return request


# --- Download by the recipient -------------------------------------------------------------------


def _completed_request_of_recipient(*, user, request_id: int) -> RecoveryRequest:
    request = (
        RecoveryRequest.objects.select_related("employee__user", "certificate")
        .filter(pk=request_id, recipient=user)
        .first()
    )
    if request is None:
        # Not the recipient: whether the request exists is none of their business here.
        raise NotFound(f"There is no recovered key for you under request #{request_id}.")
    if request.status != Status.COMPLETED:
        raise InvalidState(f"Recovery request #{request.pk} is {request.status}, not completed.")
    return request


def _check_download(passphrase: str, fmt: str) -> None:
    from enrollment.services import pkcs12_check_passphrase

    pkcs12_check_passphrase(passphrase)
    if fmt not in PKCS12_FORMATS:
        raise ValidationError({"format": f"Choose one of {', '.join(PKCS12_FORMATS)}."})


def _unseal(pickup: RecoveryPickup):
    if pickup.expires_at <= timezone.now():
        raise PickupUnavailable(
            f"The recovered key of certificate {pickup.certificate.serial} is no longer available "
            f"(the pickup closed on {pickup.expires_at:%Y-%m-%d}). A new recovery request is needed."
        )
    try:
        key_der = sealing.unseal(
            sealed=bytes(pickup.sealed_key),
            kek=_pickup_kek(),
            associated_data=_pickup_associated_data(
                request_id=pickup.request_id, serial=pickup.certificate.serial, recipient_id=pickup.recipient_id
            ),
        )
    except sealing.SealError:
        raise ConfigurationError(
            "The recovered key cannot be decrypted: the pickup key-encryption key (PORTAL_PICKUP_KEK) has changed."
        ) from None
    return private_key_from_der(key_der)


def _bundle(pickup: RecoveryPickup, key, *, passphrase: str, fmt: str) -> bytes:
    from enrollment.services import certificate_chain

    certificate = pickup.certificate
    return pkcs12_bundle(
        key=key,
        certificate=certificate.x509,
        chain=certificate_chain(certificate),
        friendly_name=f"{certificate.employee.display_name} S/MIME {certificate.serial} (recovered)",
        passphrase=passphrase,
        fmt=fmt,
    )


def _count_downloads(pickups: list[RecoveryPickup]) -> None:
    now = timezone.now()
    for pickup in pickups:
        pickup.download_count += 1
        pickup.last_downloaded_at = now
        pickup.save(update_fields=["download_count", "last_downloaded_at"])


@transaction.atomic
@sensitive_variables("passphrase", "key")
def recovery_pkcs12_export(
    *, user, request_id: int, passphrase: str, fmt: str = "modern", serial: str = ""
) -> tuple[str, bytes]:
    """(file name, PKCS#12) of one recovered key, for the request's recipient only.

    A request covering several keys needs `serial`; `key_history_pkcs12_export` gives all.
    """
    request = _completed_request_of_recipient(user=user, request_id=request_id)
    _check_download(passphrase, fmt)
    pickups = request.pickups.select_for_update(of=("self",)).select_related(
        "certificate__employee__user", "certificate__issuer"
    )
    serial = normalize_serial(serial)
    if serial:
        pickups = pickups.filter(certificate__serial=serial)
    pickups = list(pickups.order_by("certificate__not_before", "pk"))
    if not pickups:
        raise NotFound(f"Recovery request #{request.pk} holds no recovered key of certificate {serial}.")
    if len(pickups) > 1:
        raise ValidationError(
            {"certificate": f"Recovery request #{request.pk} holds {len(pickups)} keys "
             f"({', '.join(p.certificate.serial for p in pickups)}): name one, or download the key history."}
        )
    pickup = pickups[0]
    bundle = _bundle(pickup, _unseal(pickup), passphrase=passphrase, fmt=fmt)
    _count_downloads(pickups)
    audit_record(
        action=AuditAction.RECOVERY_DOWNLOADED,
        actor=user,
        obj=request,
        details={"certificates": [pickup.certificate.serial], "format": fmt, "bundle": "pkcs12"},
    )
    return f"{pickup.certificate.mailbox}-{pickup.certificate.serial}.p12", bundle


@transaction.atomic
@sensitive_variables("passphrase", "key")
def key_history_pkcs12_export(*, user, request_id: int, passphrase: str, fmt: str = "modern") -> tuple[str, bytes]:
    """(file name, ZIP) with one PKCS#12 per recovered key of a completed request: the
    employee's key history, to read old mail. Same passphrase for every file."""
    request = _completed_request_of_recipient(user=user, request_id=request_id)
    _check_download(passphrase, fmt)
    pickups = list(
        request.pickups.select_for_update(of=("self",))
        .select_related("certificate__employee__user", "certificate__issuer")
        .order_by("certificate__not_before", "pk")
    )
    if not pickups:
        raise NotFound(f"Recovery request #{request.pk} holds no recovered key.")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for pickup in pickups:
            certificate = pickup.certificate
            name = f"{certificate.not_before:%Y-%m-%d}-{certificate.serial}.p12"
            archive.writestr(name, _bundle(pickup, _unseal(pickup), passphrase=passphrase, fmt=fmt))
    _count_downloads(pickups)
    serials = [pickup.certificate.serial for pickup in pickups]
    audit_record(
        action=AuditAction.RECOVERY_DOWNLOADED,
        actor=user,
        obj=request,
        details={"certificates": serials, "format": fmt, "bundle": "key-history"},
    )
    return f"{request.employee.mail}-key-history.zip", buffer.getvalue()
