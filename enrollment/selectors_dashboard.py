"""Reads behind the admin dashboard: certificates, requests, directory publications, CRL and OCSP health.

A few aggregate queries whatever the number of rows (conditional COUNTs, GROUP BY), never a
loop over rows. Each count has its condition here as a Q, which the admin's list filters
(enrollment/admin_filters.py) apply as well: a number on the dashboard and the list it links
to are the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from cryptography import x509
from django.conf import settings
from django.db.models import BigIntegerField, Count, Q
from django.db.models.functions import Cast
from django.utils import timezone

from audit.events import AuditAction
from audit.models import AuditEvent

from .keystore.ocsp import responder_directory
from .models import Certificate, CertificateAuthority, CertificateRequest, DirectoryPublication
from .pki import ocsp as pki_ocsp

ISSUED_WEEKS = 12
EXPIRY_WINDOWS = (30, 60, 90)
DIRECTORY_FAILED_STATES = (DirectoryPublication.State.FAILED, DirectoryPublication.State.REMOVE_FAILED)


# --- The conditions (shared with the list filters) ---------------------------------------------


def week_start(day: date) -> date:
    """The Monday of `day`'s week."""
    return day - timedelta(days=day.weekday())


def issued_in_week_q(*, week: date) -> Q:
    """Certificates issued (created) in the week that starts on `week`, in the server's time zone."""
    start = timezone.make_aware(datetime.combine(week, time.min))
    return Q(created_at__gte=start, created_at__lt=start + timedelta(days=7))


def expiring_within_q(*, days: int, now: datetime) -> Q:
    """Valid certificates whose validity ends within `days` days from `now`."""
    return Q(status=Certificate.Status.VALID, not_after__gt=now, not_after__lte=now + timedelta(days=days))


def revoked_for_reason_q(*, reason: str) -> Q:
    """Revoked certificates with that reason ("unspecified" also covers an empty reason)."""
    names = ["unspecified", ""] if reason == "unspecified" else [reason]
    return Q(status=Certificate.Status.REVOKED, revocation_reason__in=names)


def crl_this_updates() -> dict[int, datetime | None]:
    """When each CA that signs CRLs here signed its current one (None: it has none yet). One query."""
    this_updates = {}
    for pk, crl_der in CertificateAuthority.objects.with_key().order_by("pk").values_list("pk", "crl_der"):
        this_updates[pk] = x509.load_der_x509_crl(bytes(crl_der)).last_update_utc if crl_der else None
    return this_updates


def revoked_after_crl_q(this_updates: dict[int, datetime | None]) -> Q:
    """Revoked certificates that their CA's current CRL does not list yet (revoked after it was signed)."""
    condition = Q(pk__in=[])
    for ca_id, this_update in this_updates.items():
        issued_here = Q(issuer_id=ca_id, status=Certificate.Status.REVOKED)
        condition |= issued_here & Q(revoked_at__gt=this_update) if this_update else issued_here
    return condition


# --- The counts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateCounts:
    issued_by_week: list[tuple[date, int]]  # oldest first, the current week last
    expiring: dict[int, int]  # days -> valid certificates that end within them
    revoked_by_reason: list[tuple[str, int]]  # reasons that occur, by name
    revoked_after_crl: int


def issued_weeks(*, now: datetime, weeks: int = ISSUED_WEEKS) -> list[date]:
    current = week_start(timezone.localdate(now))
    return [current - timedelta(weeks=back) for back in range(weeks - 1, -1, -1)]


def certificate_counts(*, now: datetime, this_updates: dict[int, datetime | None] | None = None) -> CertificateCounts:
    """Issued per week, expiring, revoked per reason, revoked but not on the CRL: two queries, and one for
    the CAs' CRLs unless `this_updates` (crl_this_updates, or from revocation_health) is given."""
    weeks = issued_weeks(now=now)
    this_updates = crl_this_updates() if this_updates is None else this_updates
    aggregates = {f"week_{index}": Count("pk", filter=issued_in_week_q(week=week)) for index, week in enumerate(weeks)}
    aggregates |= {
        f"expiring_{days}": Count("pk", filter=expiring_within_q(days=days, now=now)) for days in EXPIRY_WINDOWS
    }
    aggregates["revoked_after_crl"] = Count("pk", filter=revoked_after_crl_q(this_updates))
    row = Certificate.objects.order_by().aggregate(**aggregates)
    reasons: dict[str, int] = {}
    for group in (
        Certificate.objects.filter(status=Certificate.Status.REVOKED)
        .order_by("revocation_reason")  # replaces Meta.ordering, which would split the groups
        .values("revocation_reason")
        .annotate(count=Count("pk"))
    ):
        name = group["revocation_reason"] or "unspecified"
        reasons[name] = reasons.get(name, 0) + group["count"]
    return CertificateCounts(
        issued_by_week=[(week, row[f"week_{index}"]) for index, week in enumerate(weeks)],
        expiring={days: row[f"expiring_{days}"] for days in EXPIRY_WINDOWS},
        revoked_by_reason=sorted(reasons.items()),
        revoked_after_crl=row["revoked_after_crl"],
    )


def _by_value(queryset, field: str, choices) -> list[tuple[str, str, int]]:
    groups = queryset.order_by(field).values(field).annotate(count=Count("pk"))
    counts = {group[field]: group["count"] for group in groups}
    return [(value, label, counts.get(value, 0)) for value, label in choices]


def requests_by_state() -> list[tuple[str, str, int]]:
    """(state, label, count) for every state of a certificate request, in the model's order. One query."""
    labels = {CertificateRequest.State.APPROVED: "Approved, issuing"}
    choices = [(value, labels.get(value, label)) for value, label in CertificateRequest.State.choices]
    return _by_value(CertificateRequest.objects.all(), "state", choices)


def publications_by_state() -> list[tuple[str, str, int]]:
    """(state, label, count) for every state of a directory publication. One query."""
    return _by_value(DirectoryPublication.objects.all(), "state", DirectoryPublication.State.choices)


# --- CRL and OCSP freshness ----------------------------------------------------------------------


@dataclass(frozen=True)
class CrlHealth:
    ca_id: int
    ca_name: str
    crl_number: int
    this_update: datetime | None
    next_update: datetime | None
    state: str  # fresh, due (reissued at the next fetch or periodic job), expired, missing


@dataclass(frozen=True)
class OcspHealth:
    ca_id: int
    ca_name: str
    signer: str  # delegated, ca, disabled
    responder_not_after: datetime | None  # delegated only: the newest responder certificate's end
    state: str  # fresh, renewing (renewed at the next request), none (issued at the first request), n/a


def _crl_state(this_update, next_update, now: datetime) -> str:
    if this_update is None or next_update is None:
        return "missing"
    if next_update <= now:
        return "expired"
    # Reissued once a day (revocation.services._crl_due): older than that means no job and no fetch since.
    return "due" if now - this_update > timedelta(days=1) else "fresh"


def _responder_not_after(ca: CertificateAuthority) -> datetime | None:
    """The end of the newest responder certificate on disk; read only, never issues one (ocsp_responder_current does)."""
    newest = None
    for path in sorted(responder_directory(ca).glob("*.crt.pem")):
        try:
            certificate = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError):
            continue
        if pki_ocsp.is_responder_for(certificate, ca.certificate):
            end = certificate.not_valid_after_utc
            newest = end if newest is None or end > newest else newest
    return newest


def _ocsp_state(signer: str, not_after: datetime | None, now: datetime) -> str:
    if signer != "delegated":
        return "n/a"
    if not_after is None:
        return "none"
    margin = timedelta(days=settings.PORTAL_OCSP_RESPONDER_VALIDITY_DAYS) / 3
    return "fresh" if not_after - now > margin else "renewing"


def revocation_health(*, now: datetime) -> tuple[list[CrlHealth], list[OcspHealth]]:
    """Per CA that signs here: its CRL's age and the OCSP responder's certificate. One query, plus files."""
    crls, responders = [], []
    signer = settings.PORTAL_OCSP_SIGNER if settings.PORTAL_OCSP_ENABLED else "disabled"
    for ca in CertificateAuthority.objects.with_key().order_by("pk"):
        this_update = x509.load_der_x509_crl(bytes(ca.crl_der)).last_update_utc if ca.crl_der else None
        crls.append(
            CrlHealth(
                ca_id=ca.pk,
                ca_name=ca.common_name,
                crl_number=ca.crl_number,
                this_update=this_update,
                next_update=ca.crl_next_update,
                state=_crl_state(this_update, ca.crl_next_update, now),
            )
        )
        not_after = _responder_not_after(ca) if signer == "delegated" else None
        responders.append(
            OcspHealth(
                ca_id=ca.pk,
                ca_name=ca.common_name,
                signer=signer,
                responder_not_after=not_after,
                state=_ocsp_state(signer, not_after, now),
            )
        )
    return crls, responders


REVOCATION_FAILURE_DAYS = 30


def revocation_failures_not_done(*, now: datetime, days: int = REVOCATION_FAILURE_DAYS) -> int:
    """Certificates whose revocation failed in the last `days` days and that are valid still.

    A failed revocation rolls back; certificate_revoke audits it afterwards
    (certificate.revocation_failed). Once someone revokes the certificate after all, it stops counting.
    """
    failed = AuditEvent.objects.filter(
        action=AuditAction.CERTIFICATE_REVOCATION_FAILED,
        object_type=Certificate._meta.label_lower,  # object_id: the certificate's pk, digits only
        timestamp__gte=now - timedelta(days=days),
    ).values(pk=Cast("object_id", BigIntegerField()))
    return Certificate.objects.filter(pk__in=failed, status=Certificate.Status.VALID).count()  # one query
