"""What a person's directory entry should carry: a function of the database, nothing else.

Every publish or unpublish event (issuance, revocation, expiry, a changed directory DN)
re-syncs the whole entry to `directory_certificates`, so the entry never depends on the
order in which those events happened or were retried.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from ..models import Certificate, DirectoryPublication, Employee
from ..selectors import CA_WITHOUT_CRL
from .publisher import encryption_capable

ENCRYPTION_USAGES = (Certificate.Usage.DUAL, Certificate.Usage.ENCRYPTION)
# A row that asks for (or records) the certificate's removal keeps it off the entry.
REMOVAL_STATES = (
    DirectoryPublication.State.REMOVE_PENDING,
    DirectoryPublication.State.REMOVE_FAILED,
    DirectoryPublication.State.REMOVED,
)


def certificate_belongs_in_directory(certificate: Certificate, *, now: datetime | None = None) -> bool:
    """Valid now, and a sender can encrypt to it: dual use or encryption-only, by the stored
    usage and by the certificate's own keyUsage (a signing-only key was never escrowed)."""
    now = now or timezone.now()
    return (
        certificate.status == Certificate.Status.VALID
        and certificate.not_before <= now < certificate.not_after
        and certificate.usage in ENCRYPTION_USAGES
        and encryption_capable(certificate.x509)
    )


def directory_certificates(*, employee: Employee, now: datetime | None = None) -> list[Certificate]:
    """The certificates senders should find on the employee's entry: the newest one they can
    encrypt to, when there is one (issue order: notBefore, then the row's id), leaving out
    certificates whose removal was asked for (publication_schedule_removal).

    When it is revoked or expires, the next older valid one takes its place again.
    """
    return directory_certificates_by_employee(employee_ids=[employee.pk], now=now)[employee.pk]


def directory_certificates_by_employee(*, employee_ids: Iterable[int], now: datetime | None = None) -> dict[int, list[Certificate]]:
    """directory_certificates for many employees with one query (a batch drain): employee id -> certificates."""
    now = now or timezone.now()
    wanted: dict[int, list[Certificate]] = {pk: [] for pk in employee_ids}
    candidates = (
        Certificate.objects.filter(
            employee_id__in=list(wanted),
            status=Certificate.Status.VALID,
            usage__in=ENCRYPTION_USAGES,
            not_before__lte=now,
            not_after__gt=now,
        )
        .exclude(directory_publication__state__in=REMOVAL_STATES)
        .select_related("issuer__parent")
        .defer(*(f"issuer__{field}" for field in CA_WITHOUT_CRL))  # megabytes per row with many revoked
        .order_by("employee_id", "-not_before", "-pk")
    )
    for certificate in candidates:
        if not wanted[certificate.employee_id] and certificate_belongs_in_directory(certificate, now=now):
            wanted[certificate.employee_id] = [certificate]
    return wanted
