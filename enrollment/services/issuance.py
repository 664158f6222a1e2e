"""Issuance and delivery: key generation, pre-issuance lint, signing, escrow and the pickup
copy for an approved request; the owner's PKCS#12 download while the pickup window is open."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_appends_at_end, audit_record
from core.db import is_conflict, retry_on_conflict
from core.exceptions import InvalidState, IssuanceError, PortalError, TryAgain
from escrow.services.escrow import escrow_record_create
from escrow.services.pickups import pickup_copy_create, pickup_copy_export

from .. import selectors, signals
from ..bundles import pkcs12_check_format
from ..keystore.ca import key_backend_for
from ..models import Certificate, CertificateAuthority, CertificateRequest
from ..notifications.services import notify_certificate_ready, notify_request_failed
from ..pki.keys import generate_private_key
from ..pki.lint import blocking_findings, lint_before_signing
from ..pki.profiles import Subscriber, name_text, smime_certificate_builder
from ..pki.serials import serial_text
from .authorities import issuer_info, organization_from_settings

logger = logging.getLogger(__name__)

# An approved request not issued after this long lost its task (a worker died): the sweep re-enqueues it.
ISSUANCE_STUCK_SECONDS = 600


# --- Issuance -----------------------------------------------------------------------------------
#
# Two steps, so that the heavy crypto never runs inside a transaction (issue 13: the audit
# chain's advisory lock was held through key generation, lint and signing):
#
# 1. `issuance_prepare`: key generation, the profile builder and the pre-issuance lint, with
#    no transaction and no lock (nothing is written; a failure here leaves nothing behind);
# 2. `_issuance_record`: one transaction in the lock order of core/db.py - the request row
#    (rechecked `approved`: a request issued meanwhile is a no-op), the CA key signs what was
#    linted, the certificates, pickup copies and escrow records are written, and the audit
#    events last. Everything or nothing: never a certificate without its escrow.
#
# What two workers share is the audit chain's lock, held from an append to the commit. The
# events of the transaction (escrow, certificates, mail) are appended together at its end
# (`audit_appends_at_end`), so that lock covers one select, one insert and the commit only.
#
# The same two steps run in a Celery worker (`enrollment.tasks.certificate_request_issue`,
# with PORTAL_BROKER_URL) or in the web process right after the approval's commit (without).


class IssuanceInterrupted(Exception):
    """Something changed between the preparation and the recording (nothing was written): try again."""


@dataclass(frozen=True)
class PreparedCertificate:
    """A generated key and its linted, unsigned certificate builder (nothing written yet)."""

    usage: str
    key: object
    builder: x509.CertificateBuilder


@dataclass(frozen=True)
class PreparedIssuance:
    ca_id: int
    certificates: tuple[PreparedCertificate, ...]


def _usages(request: CertificateRequest) -> list[str]:
    if request.key_separation:
        return [Certificate.Usage.SIGNING, Certificate.Usage.ENCRYPTION]
    return [Certificate.Usage.DUAL]


def _certificate_prepare(*, request: CertificateRequest, ca: CertificateAuthority, usage: str) -> PreparedCertificate:
    """Generate a key and build its certificate; the pre-issuance lint must find nothing blocking."""
    employee = request.employee
    key = generate_private_key(request.key_type)
    try:
        builder = smime_certificate_builder(
            certificate_type=request.certificate_type,
            subscriber=Subscriber(mailbox=employee.mail, given_name=employee.given_name, surname=employee.surname),
            organization=organization_from_settings(),
            issuer=issuer_info(ca),
            public_key=key.public_key(),
            not_before=timezone.now(),
            validity_days=settings.PORTAL_CERTIFICATE_VALIDITY_DAYS,
            usage=usage,
        )
    except ValueError as exc:
        raise IssuanceError(f"The certificate cannot be built: {exc}") from None
    # Pre-issuance linting (SBR 4.3.1.2): the CA key signs nothing pkilint would refuse.
    findings = blocking_findings(lint_before_signing(builder, ca_public_key=ca.certificate.public_key()))
    if findings:
        raise IssuanceError(
            "Pre-issuance lint refused the certificate: "
            + "; ".join(f"{f.severity} {f.code}: {f.message}".strip() for f in findings)
        )
    return PreparedCertificate(usage=usage, key=key, builder=builder)


def issuance_prepare(*, request: CertificateRequest) -> PreparedIssuance:
    """The crypto of an issuance before any transaction: keys, builders, lint. Writes nothing."""
    ca = selectors.issuing_ca()
    return PreparedIssuance(
        ca_id=ca.pk,
        certificates=tuple(_certificate_prepare(request=request, ca=ca, usage=usage) for usage in _usages(request)),
    )


@retry_on_conflict
@transaction.atomic
def _issuance_record(*, request_id: int, prepared: PreparedIssuance) -> Certificate | None:
    """Sign what `issuance_prepare` linted and record it all; None if the request is no longer `approved`."""
    with audit_appends_at_end():
        return _issuance_write(request_id=request_id, prepared=prepared)


def _issuance_write(*, request_id: int, prepared: PreparedIssuance) -> Certificate | None:
    # The lock order (core/db.py): the request; escrow rows; the audit chain last.
    request = (
        CertificateRequest.objects.select_for_update(of=("self",), no_key=True)
        .select_related("employee__user")
        .filter(pk=request_id)
        .first()
    )
    if request is None or request.state != CertificateRequest.State.APPROVED:
        return None  # issued (or failed, withdrawn) meanwhile: a task delivered twice does nothing
    if not request.employee.user.is_active:
        # Offboarded between the approval and the worker (offboarding withdraws pending requests only).
        raise InvalidState(f"The account of {request.employee.mail} was deactivated before the certificate was issued.")
    ca = selectors.issuing_ca()
    if ca.pk != prepared.ca_id:
        raise IssuanceInterrupted(f"The issuing CA changed while request #{request_id} was prepared.")
    employee = request.employee
    backend = key_backend_for(ca)
    issued: list[tuple[Certificate, PreparedCertificate]] = []
    for part in prepared.certificates:
        signed = backend.sign_certificate(part.builder)
        certificate = Certificate(
            request=request,
            employee=employee,
            issuer=ca,
            usage=part.usage,
            serial=serial_text(signed.serial_number),
            subject=name_text(signed.subject),
            mailbox=employee.mail,
            key_type=request.key_type,
            certificate_type=request.certificate_type,
            not_before=signed.not_valid_before_utc,
            not_after=signed.not_valid_after_utc,
            fingerprint_sha256=signed.fingerprint(hashes.SHA256()).hex(),
            der=signed.public_bytes(Encoding.DER),
        )
        # Field checks only: the database's keys and unique indexes hold the rest (no query each here).
        certificate.full_clean(
            exclude=["request", "employee", "issuer"], validate_unique=False, validate_constraints=False
        )
        certificate.save(force_insert=True)
        pickup_copy_create(certificate=certificate, private_key=part.key)
        issued.append((certificate, part))
    for certificate, part in issued:
        if part.usage != Certificate.Usage.SIGNING:
            escrow_record_create(certificate=certificate, private_key=part.key)
        audit_record(
            action=AuditAction.CERTIFICATE_ISSUED,
            obj=certificate,
            details={
                "serial": certificate.serial,
                "request": request.pk,
                "usage": part.usage,
                "fingerprint": certificate.fingerprint_sha256,
                "key_escrowed": part.usage != Certificate.Usage.SIGNING,
            },
        )
    request.state = CertificateRequest.State.ISSUED
    request.save(update_fields=["state"])
    notify_certificate_ready(request=request, certificates=[certificate for certificate, _ in issued])
    for certificate, _ in issued:
        signals.post_issue_certificate.send(sender=Certificate, certificate=certificate)
    return issued[-1][0]


def certificate_request_issue(*, request_id: int) -> Certificate | None:
    """Issue for an approved request (the worker's entry point); idempotent.

    Returns the dual-use or encryption certificate, or None when there is nothing to do
    (the request is issued, failed or gone) or the issuance was refused for good (a lint
    finding, no recovery agent...: the request is then `failed` with the reason). Anything
    else - a database or HSM outage, a worker bug - is raised with nothing written, for the
    caller to retry (`IssuanceError.transient` or an unexpected exception).
    """
    request = CertificateRequest.objects.select_related("employee").filter(pk=request_id).first()
    if request is None or request.state != CertificateRequest.State.APPROVED:
        return None
    try:
        return _issuance_record(request_id=request_id, prepared=issuance_prepare(request=request))
    except PortalError as exc:
        if isinstance(exc, TryAgain):
            raise
        certificate_request_fail(request_id=request_id, reason=exc.message)
        return None


@retry_on_conflict
@transaction.atomic
def certificate_request_fail(*, request_id: int, reason: str) -> bool:
    """Mark an approved request `failed` with a readable reason (audited); False if it was not approved."""
    updated = CertificateRequest.objects.filter(pk=request_id, state=CertificateRequest.State.APPROVED).update(
        state=CertificateRequest.State.FAILED, reason=reason
    )
    if updated:
        request = CertificateRequest.objects.get(pk=request_id)
        audit_record(action=AuditAction.REQUEST_FAILED, obj=request, details={"reason": reason})
        notify_request_failed(request=request)
    return bool(updated)


def issuance_failure_reason(exc: BaseException, *, attempts: int = 1) -> str:
    """What the request's `reason` says about an exception that ended its issuance."""
    if isinstance(exc, PortalError):
        return exc.message
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    return f"Issuance failed unexpectedly{tries} ({type(exc).__name__}); see the server log."


def certificate_request_fulfil(*, request: CertificateRequest) -> Certificate | None:
    """Issue for an approved request in this process, or mark it failed with the reason; never half-issued.

    The path without a broker (and of auto-approved renewals): a failure of any kind ends in
    `failed` at once. Inside a caller's transaction a deadlock is raised instead, so that the
    caller's whole transaction is rerun (core/db.py).
    """
    try:
        return certificate_request_issue(request_id=request.pk)
    except Exception as exc:  # noqa: BLE001 - any failure must end in `failed`, not a half-issued request
        if is_conflict(exc):
            raise
        if not isinstance(exc, PortalError):
            logger.exception("Issuance for request %s failed", request.pk)
        certificate_request_fail(request_id=request.pk, reason=issuance_failure_reason(exc))
        return None


issuance_requested = Signal()
"""Sent after the commit of an approval when a broker is configured: a worker is to issue.

sender: the CertificateRequest class. Arguments: `request_id`. Connected by
`enrollment.tasks` (the edge that queues the Celery task; services do not import tasks).
A lost message is no loss: the request stays `approved` and `issuance_sweep` finds it.
"""


def issuance_queue_after_commit(*, request_id: int) -> None:
    """Have a worker issue for `request_id` once the current transaction has committed."""
    transaction.on_commit(
        lambda: issuance_requested.send(sender=CertificateRequest, request_id=request_id), robust=True
    )


def issuance_in_background() -> bool:
    """Whether approval leaves the issuance to a Celery worker (a broker is configured)."""
    return bool(getattr(settings, "CELERY_BROKER_URL", ""))


def issuance_stuck_requests(*, older_than: timedelta | None = None, limit: int = 1000) -> list[int]:
    """Requests approved longer ago than `older_than` and still not issued (their task was lost), oldest first."""
    if older_than is None:
        older_than = timedelta(seconds=getattr(settings, "PORTAL_ISSUANCE_STUCK_SECONDS", ISSUANCE_STUCK_SECONDS))
    cutoff = timezone.now() - older_than
    return list(
        CertificateRequest.objects.filter(state=CertificateRequest.State.APPROVED)
        .filter(Q(decided_at__lt=cutoff) | Q(decided_at__isnull=True))
        .order_by("decided_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def certificate_pkcs12_export(*, user, serial: str, passphrase: str, fmt: str = "modern") -> tuple[Certificate, bytes]:
    """The owner's key, certificate and chain as PKCS#12 (the API's download), while the pickup
    window is open: the same service as the page's download (escrow.services.pickups), so a
    signing-only key may be fetched again in another format within its shortened window. No
    transaction around it: the service counts the download in a short one of its own, after the build."""
    pkcs12_check_format(fmt)
    certificate, download = pickup_copy_export(actor=user, serial=serial, passphrase=passphrase, fmt=fmt)
    return certificate, download.data
