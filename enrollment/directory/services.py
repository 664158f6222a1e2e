"""Directory publication workflow: schedule, attempt, record, drain.

What a person's entry holds is a function of the database (selectors.directory_certificates:
the newest valid certificate senders can encrypt to, never a signing-only one); every
attempt, whatever event scheduled it, syncs the whole entry to it (publisher.sync_entry),
so it is idempotent and order does not matter. When the newest certificate is revoked or
expires, the sync puts the older valid one back.

The database says what must happen (DirectoryPublication rows, an outbox); the LDAP call
happens outside any database transaction, and its outcome is recorded in a short one
afterwards, with an audit event for every attempt. Callers:

- the post_issue_certificate receiver: publication_schedule() inside the issuance
  transaction, then tasks.directory_publication_run() after commit (batch.publication_attempt);
- revocation and expiry: publication_schedule_removal() in their transaction, then the same task;
- a changed directory DN: employee_directory_resync(), then the same task for each row;
- the admin's "Retry publication now" action and the API's retry: drain.publications_retry();
- `manage.py publish_pending` (cron / a periodic task): drain.publications_drain().

The attempts themselves, one row or a chunk at a time, are in batch.py. Beside it:
ca_entry.py (the CA certificate and CRL on PORTAL_LDAP_CA_ENTRY_DN) and user_sync.py (what a
directory log-in copies into the portal).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import Certificate, DirectoryPublication, Employee
from . import selectors
from .config import DirectoryConfig

State = DirectoryPublication.State
PUBLISH_STATES = (State.PENDING, State.FAILED)
REMOVE_STATES = (State.REMOVE_PENDING, State.REMOVE_FAILED)
DUE_STATES = PUBLISH_STATES + REMOVE_STATES
# While one worker talks to the directory about a row, others leave it alone this long.
CLAIM_SECONDS = 300
NO_DIRECTORY = "No directory is configured (PORTAL_LDAP_URI is empty)."


def directory_config() -> DirectoryConfig | None:
    """The configured directory, or None when PORTAL_LDAP_URI is not set.

    Raises ConfigurationError for settings that cannot work (unknown preset, bad URI).
    """
    return DirectoryConfig.from_settings()


def directory_configured() -> bool:
    """Whether a directory is configured at all: then every issued certificate gets a row.

    Deliberately not validating the rest: a mistake there must not stop issuance; the
    attempt records it on the row instead, where the admin shows it.
    """
    return bool((getattr(settings, "PORTAL_LDAP_URI", "") or "").strip())


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: base, 2×base, 4×base, … capped (PORTAL_LDAP_RETRY_* settings)."""
    base = getattr(settings, "PORTAL_LDAP_RETRY_BASE_SECONDS", 60)
    cap = getattr(settings, "PORTAL_LDAP_RETRY_MAX_SECONDS", 6 * 3600)
    return timedelta(seconds=min(cap, base * 2 ** max(0, min(attempts - 1, 30))))


# --- Scheduling (inside the caller's transaction) ---------------------------------------


@transaction.atomic
def publication_schedule(*, certificate: Certificate) -> DirectoryPublication | None:
    """Record that the entry of `certificate`'s owner must be synced to include it.

    None when no directory is configured, and for a certificate that never goes to the
    directory (signing-only: senders would encrypt to a key that was never escrowed).
    """
    if not directory_configured() or not selectors.certificate_belongs_in_directory(certificate):
        return None
    publication = DirectoryPublication.objects.select_for_update().filter(certificate=certificate).first()
    if publication is None:
        publication = DirectoryPublication(certificate=certificate)
    elif publication.state not in (State.PUBLISHED, *PUBLISH_STATES):
        return publication  # removed or superseded: publishing it again is not this call's business
    publication.state = publication.state if publication.state == State.FAILED else State.PENDING
    publication.next_attempt_at = timezone.now()
    publication.full_clean()
    publication.save()
    return publication


@transaction.atomic
def publication_schedule_removal(*, certificate: Certificate) -> DirectoryPublication | None:
    """Record that `certificate` must come off the directory (revocation, expiry).

    The attempt re-syncs the owner's entry: the certificate goes, and an older valid one
    of the same person that senders can encrypt to is published again. Also for
    certificates whose publication never succeeded: an attempt whose answer was lost may
    have written the value anyway. None when no directory is configured.
    """
    if not directory_configured():
        return None
    publication = DirectoryPublication.objects.select_for_update().filter(certificate=certificate).first()
    if publication is None:
        publication = DirectoryPublication(certificate=certificate)
    elif publication.state in (State.REMOVED, *REMOVE_STATES):
        return publication
    publication.state = State.REMOVE_PENDING
    publication.attempts = 0
    publication.last_error = ""
    publication.next_attempt_at = timezone.now()
    publication.full_clean()
    publication.save()
    return publication


@transaction.atomic
def employee_directory_resync(*, employee: Employee) -> list[DirectoryPublication]:
    """Schedule a sync of the employee's entry, e.g. after a confirmed change of the directory DN.

    The attempt publishes at the entry the employee's record names now and removes the
    employee's certificates from the entries earlier attempts wrote to. Returns the rows
    to run after commit (tasks.directory_publication_run); the periodic drain picks them
    up otherwise. Idempotent; [] without a directory or with nothing to publish or remove.
    """
    if not directory_configured():
        return []
    now = timezone.now()
    rows = list(
        DirectoryPublication.objects.select_for_update(of=("self",))
        .filter(certificate__employee=employee)
        .order_by("pk")
    )
    wanted = {certificate.pk for certificate in selectors.directory_certificates(employee=employee, now=now)}
    carriers = [row for row in rows if row.state in DUE_STATES or row.state == State.PUBLISHED or row.certificate_id in wanted]
    for certificate_id in wanted - {row.certificate_id for row in rows}:
        carriers.append(DirectoryPublication(certificate_id=certificate_id))
    for row in carriers:
        if row.state not in DUE_STATES:
            row.state = State.PENDING
            row.attempts = 0
            row.last_error = ""
        row.next_attempt_at = now
        row.full_clean()
        row.save()
    return carriers
