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
from core.db import retry_on_conflict, unique_conflicts
from core.exceptions import InvalidState, NotAllowed, NotFound, SeparationOfDuties

from .. import selectors
from ..models import Certificate, CertificateRequest, Employee, EnrollmentBatch
from ..notifications.services import notify_request_pending, notify_request_rejected
from ..pki.keys import KEY_TYPES
from ..pki.profiles import CERTIFICATE_TYPES
from .issuance import certificate_request_fulfil, issuance_in_background, issuance_queue_after_commit


def _can_approve(user) -> bool:
    return user.is_active and user.has_perm("enrollment.approve_certificaterequest")


def _lock_employee(employee: Employee) -> Employee:
    """Lock the employee's row: what serializes "one pending request" (an empty queryset locks nothing)."""
    return Employee.objects.select_for_update(no_key=True).select_related("user").get(pk=employee.pk)


@retry_on_conflict
@transaction.atomic
def certificate_request_create(
    *,
    employee: Employee,
    submitted_by,
    key_type: str = "rsa-3072",
    certificate_type: str = "sponsor-strict",
    renewal_of: Certificate | None = None,
    batch: EnrollmentBatch | None = None,
    notify_pending: bool = True,
) -> CertificateRequest:
    """A pending request; `batch`: the bulk enrollment (EnrollmentBatch) filing it, if one is.

    `notify_pending=False`: the approvers are not mailed (a request the caller approves by policy at once).
    """
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
    # The lock order (core/db.py): the employee first; two requests for one person queue here.
    employee = _lock_employee(employee)
    pending = CertificateRequest.objects.filter(employee=employee, state=CertificateRequest.State.PENDING).first()
    if pending is not None:
        raise ValidationError(f"There is a pending request for {employee.mail} already (#{pending.pk}).")
    request = CertificateRequest(
        employee=employee,
        submitted_by=submitted_by,
        key_type=key_type,
        certificate_type=certificate_type,
        key_separation=settings.PORTAL_KEY_SEPARATION,
        renewal_of=renewal_of,
        batch=batch,
    )
    request.full_clean()
    with unique_conflicts(CertificateRequest):
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
            **({"batch": batch.pk} if batch is not None else {}),
        },
    )
    if notify_pending:
        notify_request_pending(request=request)
    return request


def certificate_request_approve_by_policy(*, request: CertificateRequest, reason: str, details: dict) -> None:
    """Approve a request just created, by an organizational policy instead of a second person.

    For the caller's transaction (the request is locked by being new in it): the decision is
    audited `request.auto_approved` with `details` (the policy and what it applied to; no actor:
    nobody decided, the policy did), and the issuance follows the commit - on a worker with a
    broker, in this process without. The caller decides whether a policy applies
    (enrollment/bulk.py: PORTAL_ENROLLMENT_AUTO_APPROVE for a PKI administrator's batch).
    """
    request.state = CertificateRequest.State.APPROVED
    request.decided_at = timezone.now()
    request.reason = reason
    request.save(update_fields=["state", "decided_at", "reason"])
    audit_record(action=AuditAction.REQUEST_AUTO_APPROVED, obj=request, details=details)
    if issuance_in_background():
        issuance_queue_after_commit(request_id=request.pk)
    else:
        # robust: an issuance that raises (a conflict after retries) leaves this request approved, not the batch broken.
        transaction.on_commit(lambda: certificate_request_fulfil(request=request), robust=True)


def _pending_request_for_decision(*, request_id: int, user) -> CertificateRequest:
    if not _can_approve(user):
        raise NotAllowed("You are not allowed to approve or reject certificate requests.")
    # Two approvers of one request queue here; the second finds it decided (InvalidState).
    request = (
        CertificateRequest.objects.select_for_update(of=("self",), no_key=True)
        .select_related("employee__user")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        raise NotFound(f"There is no request #{request_id}.")
    if conflict := selectors.request_duty_conflict(request=request, user=user):
        raise SeparationOfDuties(f"You cannot decide request #{request.pk}: {conflict} (separation of duties).")
    if request.state != CertificateRequest.State.PENDING:
        raise InvalidState(f"Request #{request.pk} is {request.state}, not pending.")
    return request


@retry_on_conflict
@transaction.atomic
def _approval_record(*, request_id: int, approver) -> CertificateRequest:
    """The decision alone: `approved` (that is, issuing), audited; with a broker the issuance is queued on commit."""
    request = _pending_request_for_decision(request_id=request_id, user=approver)
    request.state = CertificateRequest.State.APPROVED
    request.decided_by = approver
    request.decided_at = timezone.now()
    request.save(update_fields=["state", "decided_by", "decided_at"])
    audit_record(action=AuditAction.REQUEST_APPROVED, actor=approver, obj=request)
    if issuance_in_background():
        issuance_queue_after_commit(request_id=request.pk)
    return request


def certificate_request_approve(*, request_id: int, approver) -> CertificateRequest:
    """Approve: the decision commits first, then the certificate is issued in a transaction of its own.

    With a broker (PORTAL_BROKER_URL) a Celery worker issues after the commit and the request
    is returned `approved` (issuing); without one it is issued here, right after the commit,
    and returned `issued` or `failed` with the reason. Either way the key generation and the
    lint run outside any transaction (services/issuance.py).
    """
    request = _approval_record(request_id=request_id, approver=approver)
    if not issuance_in_background():
        certificate_request_fulfil(request=request)
        request.refresh_from_db()
    return request


@retry_on_conflict
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
    notify_request_rejected(request=request)
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


@retry_on_conflict
@transaction.atomic
def certificate_renewal_request(*, serial: str, user) -> CertificateRequest:
    """A request for a new certificate replacing `serial`, with the same key and certificate type.

    Auto-approved when PORTAL_RENEWAL_AUTO_APPROVE is on and the identity is unchanged;
    otherwise it waits for an approver like any request.

    The certificate is locked (after its owner, core/db.py) before anything is decided: a
    revocation in progress holds that lock, so the renewal waits for it and then refuses a
    revoked certificate; of two renewals, the second finds the first.
    """
    certificate = selectors.certificate_of_owner(user=user, serial=serial)
    _lock_employee(certificate.employee)
    certificate = (
        Certificate.objects.select_for_update(of=("self",), no_key=True)
        .select_related("employee__user")
        .get(pk=certificate.pk)
    )
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
