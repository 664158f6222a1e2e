"""Reads of enrollment data: the issuing CA, certificates by serial, what a user may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from core.exceptions import ConfigurationError, NotFound

from .models import Certificate, CertificateAuthority, CertificateRequest
from .pki.serials import normalize_serial

# The stored CRLs (megabytes with many revoked) stay out of the hot paths (issuance, OCSP,
# downloads); revocation.services.crl_current reads the CRL where it is served.
CA_WITHOUT_CRL = ("crl_der", "parent__crl_der")


def issuing_ca() -> CertificateAuthority:
    ca = CertificateAuthority.objects.select_related("parent").defer(*CA_WITHOUT_CRL).filter(is_issuing=True).first()
    if ca is None:
        raise ConfigurationError("No issuing CA is configured. Run `python manage.py init_ca` first.")
    return ca


def request_duty_conflict(*, request: CertificateRequest, user) -> str:
    """Why separation of duties keeps `user` from deciding `request`, or "" when it does not.

    The one rule both the service (which refuses) and the admin (which says so before anyone
    tries) use: nobody decides a request for themselves or one they submitted.
    """
    if user.pk == request.employee.user_id:
        return "it is your own request"
    if user.pk == request.submitted_by_id:
        return "you submitted it"
    return ""


def requests_pending() -> QuerySet[CertificateRequest]:
    """The approval queue, oldest first."""
    return CertificateRequest.objects.filter(state=CertificateRequest.State.PENDING).order_by("created_at", "pk")


@dataclass(frozen=True)
class IssuanceProgress:
    """Approved requests the workers have yet to issue, and of those approved in the last hour
    how many are issued and how many failed."""

    waiting: int
    oldest_approved_at: datetime | None
    issued_last_hour: int
    failed_last_hour: int

    @property
    def active(self) -> bool:
        return bool(self.waiting)


def issuance_progress() -> IssuanceProgress:
    """One aggregate query: the progress of issuance in the background (bulk approvals on workers)."""
    State = CertificateRequest.State
    since = timezone.now() - timedelta(hours=1)
    figures = CertificateRequest.objects.filter(
        Q(state=State.APPROVED) | Q(state__in=[State.ISSUED, State.FAILED], decided_at__gte=since)
    ).aggregate(
        waiting=Count("pk", filter=Q(state=State.APPROVED)),
        oldest=Min("decided_at", filter=Q(state=State.APPROVED)),
        issued=Count("pk", filter=Q(state=State.ISSUED)),
        failed=Count("pk", filter=Q(state=State.FAILED)),
    )
    return IssuanceProgress(
        waiting=figures["waiting"],
        oldest_approved_at=figures["oldest"],
        issued_last_hour=figures["issued"],
        failed_last_hour=figures["failed"],
    )


def requests_of_user(*, user) -> QuerySet[CertificateRequest]:
    return CertificateRequest.objects.filter(employee__user=user).prefetch_related("certificates")


def certificates_of_user(*, user) -> QuerySet[Certificate]:
    return Certificate.objects.filter(employee__user=user).select_related("issuer", "pickup").defer("issuer__crl_der")


def certificate_by_serial(*, serial: str) -> Certificate:
    normalized = normalize_serial(serial)
    certificate = (
        Certificate.objects.select_related("employee__user", "issuer__parent")
        .defer(*(f"issuer__{field}" for field in CA_WITHOUT_CRL))
        .filter(serial=normalized)
        .first()
    )
    if certificate is None:
        raise NotFound(f"No certificate with serial {serial}.")
    return certificate


def certificate_visible_to(*, user, serial: str) -> Certificate:
    """A certificate its owner, approvers and auditors may read; 404 for anyone else."""
    certificate = certificate_by_serial(serial=serial)
    if certificate.employee.user_id == user.pk or user.has_perm("enrollment.view_certificate"):
        return certificate
    raise NotFound(f"No certificate with serial {serial}.")


def certificate_of_owner(*, user, serial: str) -> Certificate:
    """A certificate of `user` only; someone else's looks like none at all."""
    certificate = certificate_by_serial(serial=serial)
    if certificate.employee.user_id != user.pk:
        raise NotFound(f"No certificate with serial {serial}.")
    return certificate
