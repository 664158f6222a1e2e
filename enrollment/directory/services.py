"""Directory publication workflow: schedule, attempt, record, drain.

The database says what must happen (DirectoryPublication rows, an outbox); the LDAP call
happens outside any database transaction, and its outcome is recorded in a short one
afterwards, with an audit event for every attempt. Callers:

- the post_issue_certificate receiver: publication_schedule() inside the issuance
  transaction, then tasks.directory_publication_run() after commit;
- revocation (later): publication_schedule_removal() in its transaction, then the same task;
- the admin's "Retry publication now" action and the API's retry: drain.publications_retry();
- `manage.py publish_pending` (cron / a periodic task): drain.publications_drain().

Beside it: ca_entry.py (the CA certificate and CRL on PORTAL_LDAP_CA_ENTRY_DN) and
user_sync.py (what a directory log-in copies into the portal).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record
from core.exceptions import PortalError

from ..models import Certificate, CertificateAuthority, DirectoryPublication
from . import publisher
from .client import DirectoryClient, DirectoryError, DirectoryUnavailable, EntryLocator
from .config import DirectoryConfig

logger = logging.getLogger(__name__)

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
    """Record that `certificate` must be published; None when no directory is configured."""
    if not directory_configured():
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
    """Record that `certificate` must come off the directory (revocation, for instance).

    Also for certificates whose publication never succeeded: an attempt whose answer was
    lost may have written the value anyway. None when no directory is configured.
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


# --- Attempts (outside transactions: they wait on the network) -------------------------


@dataclass
class AttemptResult:
    publication: DirectoryPublication
    operation: str = ""  # "publish", "unpublish", or "" when there was nothing to do
    ok: bool = True
    error: str = ""
    # The directory could not be used at all (unreachable, TLS, bind refused).
    unavailable: bool = False

    @property
    def skipped(self) -> bool:
        return not self.operation


def _operation(publication: DirectoryPublication) -> str:
    if publication.state in REMOVE_STATES:
        return "unpublish"
    if publication.state in (*PUBLISH_STATES, State.PUBLISHED):
        certificate = publication.certificate
        valid = certificate.status == Certificate.Status.VALID and certificate.not_after > timezone.now()
        # A certificate that is no longer valid is never (re)published; make sure it is gone.
        return "publish" if valid else "unpublish"
    return ""


def _claim(publication: DirectoryPublication, now: datetime) -> bool:
    """Compare-and-set, so that two workers never attempt the same row at once."""
    claimed = DirectoryPublication.objects.filter(
        pk=publication.pk, state=publication.state, last_attempt_at=publication.last_attempt_at
    ).update(last_attempt_at=now, next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
    if claimed:
        publication.last_attempt_at = now
    return bool(claimed)


def _issuers() -> list:
    """The certificates of every CA of this portal: values they signed are the portal's."""
    return [ca.certificate for ca in CertificateAuthority.objects.all()]


def _issue_order(certificate) -> tuple:
    """notBefore has whole seconds only: the database's issuance order breaks ties."""
    pk = Certificate.objects.filter(fingerprint_sha256=publisher.fingerprint(certificate)).values_list("pk", flat=True).first()
    return (certificate.not_valid_before_utc, pk or 0)


def _locator(publication: DirectoryPublication, operation: str) -> EntryLocator:
    certificate = publication.certificate
    employee = certificate.employee
    # Removal goes where the value was written; publishing follows the employee's stored DN.
    dn = (publication.entry_dn if operation == "unpublish" else "") or employee.directory_dn
    return EntryLocator(mail=certificate.mailbox, user=employee.user.get_username(), dn=dn)


def publication_attempt(
    *, publication: DirectoryPublication, connection: DirectoryClient | None = None, actor=None
) -> AttemptResult:
    """Carry out what the row asks for now (publish or unpublish) and record the outcome.

    `connection` lets a batch reuse one bound connection; without it, one is opened and
    closed here. Directory errors are recorded on the row (and audited), not raised.
    """
    publication = DirectoryPublication.objects.select_related(
        "certificate__employee__user", "certificate__issuer__parent"
    ).get(pk=publication.pk)
    operation = _operation(publication)
    if not operation:
        return AttemptResult(publication=publication)
    if not _claim(publication, timezone.now()):
        return AttemptResult(publication=publication)  # another worker has it
    certificate = publication.certificate
    try:
        config = connection.config if connection is not None else directory_config()
        if config is None:
            raise DirectoryUnavailable(NO_DIRECTORY)
    except PortalError as exc:  # ConfigurationError too: recorded, like the directory's own errors
        _record_failure(publication=publication, operation=operation, error=exc.message, actor=actor)
        return AttemptResult(publication=publication, operation=operation, ok=False, error=exc.message, unavailable=True)
    client = connection or DirectoryClient(config)
    try:
        action = publisher.publish if operation == "publish" else publisher.unpublish
        outcome = action(
            client,
            _locator(publication, operation),
            certificate=certificate.x509,
            chain=[ca.certificate for ca in certificate.issuer.chain()],
            issuers=_issuers(),
            order=_issue_order,
        )
    except DirectoryError as exc:
        _record_failure(publication=publication, operation=operation, error=exc.message, actor=actor)
        return AttemptResult(
            publication=publication, operation=operation, ok=False, error=exc.message,
            unavailable=isinstance(exc, DirectoryUnavailable),
        )
    except Exception as exc:
        logger.exception("Directory %s of certificate %s failed unexpectedly", operation, certificate.serial)
        error = f"{operation} failed unexpectedly ({type(exc).__name__}); see the server log."
        _record_failure(publication=publication, operation=operation, error=error, actor=actor)
        return AttemptResult(publication=publication, operation=operation, ok=False, error=error)
    finally:
        if connection is None:
            client.close()
    _record_success(publication=publication, operation=operation, outcome=outcome, actor=actor)
    return AttemptResult(publication=publication, operation=operation)


@transaction.atomic
def _record_success(*, publication, operation: str, outcome: publisher.PublishOutcome, actor) -> None:
    row = _locked(publication)
    row.attempts += 1
    row.last_error = ""
    row.entry_dn = outcome.entry_dn
    if operation == "publish" and outcome.superseded_by:
        final, action = State.SUPERSEDED, AuditAction.DIRECTORY_SUPERSEDED
    elif operation == "publish":
        final, action = State.PUBLISHED, AuditAction.DIRECTORY_PUBLISHED
    else:
        final, action = State.REMOVED, AuditAction.DIRECTORY_UNPUBLISHED
    if _operation(row) == operation:
        row.state = final
        row.next_attempt_at = None
    elif _operation(row):
        row.next_attempt_at = timezone.now()  # what is wanted changed meanwhile (revoked): go again
    row.save(update_fields=["attempts", "last_error", "entry_dn", "state", "next_attempt_at", "updated_at"])
    replaced = _mark_replaced(outcome.replaced, except_pk=row.certificate_id)
    details = {
        "serial": row.certificate.serial,
        "entry_dn": outcome.entry_dn,
        "attempt": row.attempts,
        "changed": outcome.changed,
    }
    if replaced:
        details["replaced"] = replaced
    if outcome.superseded_by:
        details["superseded_by"] = _serial_of(outcome.superseded_by)
    audit_record(action=action, actor=actor, obj=row.certificate, details=details)
    publication.refresh_from_db()


def _locked(publication: DirectoryPublication) -> DirectoryPublication:
    return (
        DirectoryPublication.objects.select_for_update(of=("self",))
        .select_related("certificate")
        .get(pk=publication.pk)
    )


def _serial_of(fingerprint: str) -> str:
    return Certificate.objects.filter(fingerprint_sha256=fingerprint).values_list("serial", flat=True).first() or fingerprint


def _mark_replaced(fingerprints: Iterable[str], *, except_pk: int) -> list[str]:
    """The portal's older certificates a publication took off the entry: superseded."""
    serials = []
    for certificate in Certificate.objects.filter(fingerprint_sha256__in=list(fingerprints)).exclude(pk=except_pk):
        serials.append(certificate.serial)
        DirectoryPublication.objects.filter(certificate=certificate).exclude(state__in=REMOVE_STATES).update(
            state=State.SUPERSEDED, next_attempt_at=None, updated_at=timezone.now()
        )
    return sorted(serials)


@transaction.atomic
def _record_failure(*, publication, operation: str, error: str, actor) -> None:
    row = _locked(publication)
    row.attempts += 1
    row.last_error = error
    if _operation(row) == operation:
        row.state = State.FAILED if operation == "publish" else State.REMOVE_FAILED
    row.next_attempt_at = timezone.now() + retry_delay(row.attempts)
    row.save(update_fields=["attempts", "last_error", "state", "next_attempt_at", "updated_at"])
    audit_record(
        action=AuditAction.DIRECTORY_PUBLISH_FAILED if operation == "publish" else AuditAction.DIRECTORY_UNPUBLISH_FAILED,
        actor=actor,
        obj=row.certificate,
        details={
            "serial": row.certificate.serial,
            "error": error,
            "attempt": row.attempts,
            "next_attempt_at": row.next_attempt_at.isoformat(),
        },
    )
    publication.refresh_from_db()
