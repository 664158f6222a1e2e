"""What the employee's home page shows: where each of their certificates and requests stands.

A read only (no writes, no audit): the page (templates/portal/home.html) draws one card per
thing that waits, each with one primary action. The stages, in the order an employee meets them:

- no request yet: the request form;
- a request waiting for an approver (`pending`), then being issued (`approved`);
- a rejected or failed request with nothing newer: its reason, and "request again";
- a certificate whose key waits in its pickup window (`ready`), downloaded (`downloaded`: next,
  install it), then `valid` until it expires (renew inside the renewal window; revoke if lost).

A certificate that was renewed (its renewal issued), revoked or expired is a previous one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from audit.events import AuditAction
from audit.selectors import audit_events
from enrollment.models import Certificate, CertificateRequest, DirectoryPublication, Employee
from escrow.models import EscrowRecord

READY = "ready"
DOWNLOADED = "downloaded"
VALID = "valid"

# A renewal that is not refused or failed: the certificate is renewed, or being renewed.
_LIVE_RENEWAL_STATES = (CertificateRequest.State.PENDING, CertificateRequest.State.APPROVED)


@dataclass(frozen=True)
class CertificateCard:
    """A current certificate: where its key is, what the employee does next."""

    certificate: Certificate
    stage: str  # READY, DOWNLOADED or VALID
    pickup_until: datetime | None  # the end of the open download window, if it is open
    downloads: int  # downloads of the key counted on the pickup copy (0 once it is gone)
    downloaded: bool
    escrowed: bool
    renewable: bool  # inside the renewal window and not being renewed
    renew_from: datetime
    renewal: CertificateRequest | None  # a renewal waiting for approval or being issued
    publication: DirectoryPublication | None

    @property
    def signing_only(self) -> bool:
        return self.certificate.usage == Certificate.Usage.SIGNING


@dataclass(frozen=True)
class PreviousCertificate:
    certificate: Certificate
    why: str  # "renewed", "revoked" or "expired"
    escrowed: bool


@dataclass(frozen=True)
class HomeState:
    employee: Employee | None
    pending: CertificateRequest | None
    issuing: tuple[CertificateRequest, ...]
    closed: CertificateRequest | None  # the newest request, if it was rejected or failed
    current: tuple[CertificateCard, ...]
    previous: tuple[PreviousCertificate, ...]
    requests: tuple[CertificateRequest, ...]

    @property
    def stage(self) -> str:
        """The headline: what the employee is waiting for or should do first."""
        if self.employee is None:
            return "no-employee"
        for stage in (READY, DOWNLOADED):
            if any(card.stage == stage for card in self.current):
                return stage
        if self.pending is not None:
            return "pending"
        if self.issuing:
            return "issuing"
        if self.current:
            return VALID
        if self.closed is not None:
            return self.closed.state
        return "no-request"

    @property
    def request_form(self) -> str:
        """`open`: the form is the page's action; `another`: behind a disclosure; "": no request makes sense.

        A second pending request is refused by certificate_request_create, so no form while one waits.
        With a valid certificate a new request is possible but rarely what is meant: renewal is.
        """
        if self.employee is None or self.pending is not None or self.issuing:
            return ""
        return "another" if self.current else "open"

    @property
    def renewal_due(self) -> bool:
        """Every current certificate is inside its renewal window: a new request makes sense too."""
        return bool(self.current) and all(card.renewable for card in self.current)


def _downloaded_without_pickup(certificates: list[Certificate]) -> set[str]:
    """Of certificates whose pickup copy is gone, the ids (as the audit log writes them) downloaded once."""
    ids = [str(certificate.pk) for certificate in certificates]
    if not ids:
        return set()
    return set(
        audit_events()
        .filter(
            action=AuditAction.CERTIFICATE_PKCS12_DOWNLOADED,
            object_type=Certificate._meta.label_lower,
            object_id__in=ids,
        )
        .values_list("object_id", flat=True)
    )


def _card(
    certificate: Certificate, *, now, downloaded_elsewhere: set[str], escrowed: set[int], renewal
) -> CertificateCard:
    pickup = getattr(certificate, "pickup", None)
    window = timedelta(days=settings.PORTAL_RENEWAL_WINDOW_DAYS)
    open_until = pickup.expires_at if pickup is not None and pickup.expires_at > now else None
    downloads = pickup.download_count if pickup is not None else 0
    downloaded = downloads > 0 or str(certificate.pk) in downloaded_elsewhere
    if open_until is not None:
        stage = DOWNLOADED if downloaded else READY
    else:
        stage = VALID
    return CertificateCard(
        certificate=certificate,
        stage=stage,
        pickup_until=open_until,
        downloads=downloads,
        downloaded=downloaded,
        escrowed=certificate.pk in escrowed,
        renewable=renewal is None and certificate.not_after - now <= window,
        renew_from=certificate.not_after - window,
        renewal=renewal,
        publication=getattr(certificate, "directory_publication", None),
    )


def home_state_of(*, user) -> HomeState:
    """Everything the home page shows for `user`, in a handful of queries."""
    employee = Employee.objects.filter(user=user).first()
    if employee is None:
        return HomeState(None, None, (), None, (), (), ())
    now = timezone.now()
    requests = tuple(
        CertificateRequest.objects.filter(employee=employee)
        .select_related("submitted_by", "decided_by", "renewal_of")
        .prefetch_related("certificates")
    )
    certificates = list(
        Certificate.objects.filter(employee=employee).select_related("pickup", "directory_publication", "request")
    )
    escrowed = set(EscrowRecord.objects.filter(certificate__in=certificates).values_list("certificate_id", flat=True))
    renewed = {r.renewal_of_id for r in requests if r.renewal_of_id and r.state == CertificateRequest.State.ISSUED}
    renewing = {r.renewal_of_id: r for r in requests if r.renewal_of_id and r.state in _LIVE_RENEWAL_STATES}

    live = [
        c for c in certificates if c.status == Certificate.Status.VALID and c.not_after > now and c.pk not in renewed
    ]
    without_pickup = [c for c in live if getattr(c, "pickup", None) is None]
    downloaded_elsewhere = _downloaded_without_pickup(without_pickup)
    current = tuple(
        _card(c, now=now, downloaded_elsewhere=downloaded_elsewhere, escrowed=escrowed, renewal=renewing.get(c.pk))
        for c in live
    )
    previous = tuple(
        PreviousCertificate(c, _why_previous(c, now=now, renewed=renewed), c.pk in escrowed)
        for c in certificates
        if c not in live
    )
    pending = next((r for r in requests if r.state == CertificateRequest.State.PENDING), None)
    issuing = tuple(r for r in requests if r.state == CertificateRequest.State.APPROVED)
    newest = requests[0] if requests else None
    closed = (
        newest
        if newest is not None and newest.state in (CertificateRequest.State.REJECTED, CertificateRequest.State.FAILED)
        else None
    )
    return HomeState(employee, pending, issuing, closed, current, previous, requests)


def _why_previous(certificate: Certificate, *, now, renewed: set[int]) -> str:
    if certificate.status == Certificate.Status.REVOKED:
        return "revoked"
    if certificate.status == Certificate.Status.EXPIRED or certificate.not_after <= now:
        return "expired"
    return "renewed" if certificate.pk in renewed else certificate.status
