"""Certificate requests: created by the employee (or an approver for them), decided by an
approver other than the employee and the submitter; approval issues at once; renewal."""

from __future__ import annotations

from datetime import timedelta

from cryptography import x509
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record
from core.exceptions import InvalidState, NotAllowed, NotFound, SeparationOfDuties

from .. import selectors
from ..models import Certificate, CertificateRequest, Employee
from ..pki.keys import KEY_TYPES
from ..pki.profiles import CERTIFICATE_TYPES
from .issuance import certificate_request_fulfil


def _can_approve(user) -> bool:
    return user.is_active and user.has_perm("enrollment.approve_certificaterequest")


@transaction.atomic
def certificate_request_create(
    *,
    employee: Employee,
    submitted_by,
    key_type: str = "rsa-3072",
    certificate_type: str = "sponsor-strict",
    renewal_of: Certificate | None = None,
) -> CertificateRequest:
    if submitted_by.pk != employee.user_id and not _can_approve(submitted_by):
        raise NotAllowed("You can only request certificates for yourself.")
    errors = {}
    if key_type not in KEY_TYPES:
        errors["key_type"] = f"Unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}."
    if certificate_type not in CERTIFICATE_TYPES:
        errors["certificate_type"] = (
            f"Unknown certificate type {certificate_type!r}; choose one of {', '.join(CERTIFICATE_TYPES)}."
        )
    if certificate_type == "sponsor-strict" and not (employee.given_name and employee.surname):
        errors["certificate_type"] = (
            "A sponsor-validated certificate names the person: the employee record needs a given name and surname."
        )
    domain = employee.mail.rsplit("@", 1)[-1].lower()
    if settings.PORTAL_MAIL_DOMAINS and domain not in settings.PORTAL_MAIL_DOMAINS:
        errors["mail"] = f"This CA does not certify addresses at {domain}."
    if errors:
        raise ValidationError(errors)
    pending = CertificateRequest.objects.select_for_update().filter(
        employee=employee, state=CertificateRequest.State.PENDING
    )
    if pending.exists():
        raise ValidationError(f"There is a pending request for {employee.mail} already (#{pending.first().pk}).")
    request = CertificateRequest(
        employee=employee,
        submitted_by=submitted_by,
        key_type=key_type,
        certificate_type=certificate_type,
        key_separation=settings.PORTAL_KEY_SEPARATION,
        renewal_of=renewal_of,
    )
    request.full_clean()
    request.save()
    audit_record(
        action=AuditAction.REQUEST_CREATED,
        actor=submitted_by,
        obj=request,
        details={
            "mailbox": employee.mail,
            "key_type": key_type,
            "certificate_type": certificate_type,
            "key_separation": request.key_separation,
            **({"renewal_of": renewal_of.serial} if renewal_of else {}),
        },
    )
    return request


def _pending_request_for_decision(*, request_id: int, user) -> CertificateRequest:
    if not _can_approve(user):
        raise NotAllowed("You are not allowed to approve or reject certificate requests.")
    request = (
        CertificateRequest.objects.select_for_update(of=("self",))
        .select_related("employee__user")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        raise NotFound(f"There is no request #{request_id}.")
    if user.pk in (request.employee.user_id, request.submitted_by_id):
        raise SeparationOfDuties(
            f"You cannot decide request #{request.pk}: it is your own (separation of duties)."
        )
    if request.state != CertificateRequest.State.PENDING:
        raise InvalidState(f"Request #{request.pk} is {request.state}, not pending.")
    return request


@transaction.atomic
def certificate_request_approve(*, request_id: int, approver) -> CertificateRequest:
    """Approve, and issue at once in this transaction (the request ends `issued` or `failed`)."""
    request = _pending_request_for_decision(request_id=request_id, user=approver)
    request.state = CertificateRequest.State.APPROVED
    request.decided_by = approver
    request.decided_at = timezone.now()
    request.save(update_fields=["state", "decided_by", "decided_at"])
    audit_record(action=AuditAction.REQUEST_APPROVED, actor=approver, obj=request)
    certificate_request_fulfil(request=request)
    request.refresh_from_db()
    return request


@transaction.atomic
def certificate_request_reject(*, request_id: int, approver, reason: str) -> CertificateRequest:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the request is rejected."})
    request = _pending_request_for_decision(request_id=request_id, user=approver)
    request.state = CertificateRequest.State.REJECTED
    request.decided_by = approver
    request.decided_at = timezone.now()
    request.reason = reason
    request.save(update_fields=["state", "decided_by", "decided_at", "reason"])
    audit_record(action=AuditAction.REQUEST_REJECTED, actor=approver, obj=request, details={"reason": reason})
    return request


def _identity_unchanged(certificate: Certificate) -> bool:
    """Whether a new certificate would name the same person and mailbox as `certificate`."""
    employee = certificate.employee
    if certificate.mailbox != employee.mail:
        return False
    if certificate.certificate_type != "sponsor-strict":
        return True
    subject = certificate.x509.subject

    def name(oid) -> str:
        values = subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    return (name(x509.NameOID.GIVEN_NAME), name(x509.NameOID.SURNAME)) == (employee.given_name, employee.surname)


@transaction.atomic
def certificate_renewal_request(*, serial: str, user) -> CertificateRequest:
    """A request for a new certificate replacing `serial`, with the same key and certificate type.

    Auto-approved when PORTAL_RENEWAL_AUTO_APPROVE is on and the identity is unchanged;
    otherwise it waits for an approver like any request.
    """
    certificate = selectors.certificate_of_owner(user=user, serial=serial)
    if certificate.status != Certificate.Status.VALID:
        raise InvalidState(f"The certificate {certificate.serial} is {certificate.status}; request a new one instead.")
    window = timedelta(days=settings.PORTAL_RENEWAL_WINDOW_DAYS)
    if certificate.not_after - timezone.now() > window:
        raise InvalidState(
            f"The certificate {certificate.serial} can be renewed from "
            f"{(certificate.not_after - window):%Y-%m-%d}, {settings.PORTAL_RENEWAL_WINDOW_DAYS} days before it expires."
        )
    if CertificateRequest.objects.filter(renewal_of=certificate).exclude(
        state__in=[CertificateRequest.State.REJECTED, CertificateRequest.State.FAILED]
    ).exists():
        raise InvalidState(f"The certificate {certificate.serial} has been renewed already.")
    request = certificate_request_create(
        employee=certificate.employee,
        submitted_by=user,
        key_type=certificate.key_type,
        certificate_type=certificate.certificate_type,
        renewal_of=certificate,
    )
    if settings.PORTAL_RENEWAL_AUTO_APPROVE and _identity_unchanged(certificate):
        request.state = CertificateRequest.State.APPROVED
        request.decided_at = timezone.now()
        request.reason = "Renewal of an unchanged identity, approved by policy."
        request.save(update_fields=["state", "decided_at", "reason"])
        audit_record(action=AuditAction.REQUEST_AUTO_APPROVED, obj=request, details={"renewal_of": certificate.serial})
        certificate_request_fulfil(request=request)
        request.refresh_from_db()
    return request
