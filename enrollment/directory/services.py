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
  transaction, then tasks.directory_publication_run() after commit;
- revocation and expiry: publication_schedule_removal() in their transaction, then the same task;
- a changed directory DN: employee_directory_resync(), then the same task for each row;
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

from ..models import Certificate, CertificateAuthority, DirectoryPublication, Employee
from . import publisher, selectors
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
    """What the row asks for: "publish" (its certificate belongs on the entry), "unpublish", or ""."""
    if publication.state in REMOVE_STATES:
        return "unpublish"
    if publication.state in (*PUBLISH_STATES, State.PUBLISHED):
        # A certificate that is no longer valid, or signing-only, is never (re)published; make sure it is gone.
        return "publish" if selectors.certificate_belongs_in_directory(publication.certificate) else "unpublish"
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


def _locator(employee: Employee) -> EntryLocator:
    """The employee's entry now: the stored DN wins, else the search for the current mailbox."""
    return EntryLocator(mail=employee.mail, user=employee.user.get_username(), dn=employee.directory_dn)


def _state_for(row: DirectoryPublication, written: list[Certificate]) -> str:
    """A row's settled state once its owner's entry holds exactly `written`."""
    if row.certificate_id in {c.pk for c in written}:
        return State.PUBLISHED
    if row.state not in selectors.REMOVAL_STATES and selectors.certificate_belongs_in_directory(row.certificate):
        return State.SUPERSEDED  # valid for encryption, but a newer one is on the entry
    return State.REMOVED


_STATE_ACTIONS = {
    State.PUBLISHED: AuditAction.DIRECTORY_PUBLISHED,
    State.SUPERSEDED: AuditAction.DIRECTORY_SUPERSEDED,
    State.REMOVED: AuditAction.DIRECTORY_UNPUBLISHED,
}


def publication_attempt(
    *, publication: DirectoryPublication, connection: DirectoryClient | None = None, actor=None
) -> AttemptResult:
    """Sync the owner's entry to what it should hold now (selectors.directory_certificates) and
    record the outcome on this row, and on the owner's other settled rows whose state it changed.

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
    employee = certificate.employee
    try:
        config = connection.config if connection is not None else directory_config()
        if config is None:
            raise DirectoryUnavailable(NO_DIRECTORY)
    except PortalError as exc:  # ConfigurationError too: recorded, like the directory's own errors
        _record_failure(publication=publication, operation=operation, error=exc.message, actor=actor)
        return AttemptResult(publication=publication, operation=operation, ok=False, error=exc.message, unavailable=True)
    wanted = selectors.directory_certificates(employee=employee)
    client = connection or DirectoryClient(config)
    try:
        outcome = publisher.sync_entry(
            client,
            _locator(employee),
            wanted=[publisher.Wanted(c.x509, [ca.certificate for ca in c.issuer.chain()]) for c in wanted],
            issuers=_issuers(),
            own=Certificate.objects.filter(employee=employee).values_list("fingerprint_sha256", flat=True),
            elsewhere=DirectoryPublication.objects.filter(certificate__employee=employee)
            .exclude(entry_dn="")
            .values_list("entry_dn", flat=True),
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
    _record_success(publication=publication, outcome=outcome, written=wanted, actor=actor)
    return AttemptResult(publication=publication, operation=operation)


def _serials(fingerprints: Iterable[str]) -> list[str]:
    return sorted(Certificate.objects.filter(fingerprint_sha256__in=list(fingerprints)).values_list("serial", flat=True))


@transaction.atomic
def _record_success(*, publication, outcome: publisher.SyncOutcome, written: list[Certificate], actor) -> None:
    """Lock order: the owner's publication rows in id order, then the audit chain."""
    employee = publication.certificate.employee
    rows = {
        row.pk: row
        for row in DirectoryPublication.objects.select_for_update(of=("self",))
        .select_related("certificate")
        .filter(certificate__employee=employee)
        .order_by("pk")
    }
    row = rows.pop(publication.pk)
    # A certificate issued, revoked or expired while we talked to the directory: go again.
    settled = [c.pk for c in selectors.directory_certificates(employee=employee)] == [c.pk for c in written]
    final = _state_for(row, written)
    row.attempts += 1
    row.last_error = ""
    row.entry_dn = outcome.entry_dn
    if settled:
        row.state = final
        row.next_attempt_at = None
    else:
        row.next_attempt_at = timezone.now()
    row.save(update_fields=["attempts", "last_error", "entry_dn", "state", "next_attempt_at", "updated_at"])
    details = {
        "serial": row.certificate.serial,
        "entry_dn": outcome.entry_dn,
        "attempt": row.attempts,
        "changed": outcome.changed,
    }
    removed = [serial for serial in _serials(outcome.removed) if serial != row.certificate.serial]
    if removed:
        details["replaced"] = removed
    if outcome.cleaned:
        details["removed_from"] = outcome.cleaned
    if final == State.SUPERSEDED and written:
        details["superseded_by"] = written[0].serial
    published = [c.serial for c in written if c.pk != row.certificate_id]
    if final != State.PUBLISHED and published:
        details["published"] = published
    audit_record(action=_STATE_ACTIONS[final], actor=actor, obj=row.certificate, details=details)
    if settled:
        _settle_others(rows.values(), written=written, outcome=outcome, cause=row.certificate, actor=actor)
    publication.refresh_from_db()


def _settle_others(rows, *, written: list[Certificate], outcome: publisher.SyncOutcome, cause: Certificate, actor) -> None:
    """The owner's other rows after a sync: the entry holds `written` now.

    Rows with work of their own left (due) keep it: their attempt finds nothing to do and
    records it. Settled rows whose state the sync changed are updated and audited, such as
    an older certificate published again after the newer one was revoked; and a wanted
    certificate without a row (issued before the directory was configured) gets one.
    """
    now = timezone.now()
    seen = {cause.pk}
    for row in rows:
        seen.add(row.certificate_id)
        if row.state in DUE_STATES:
            continue
        target = _state_for(row, written)
        if row.state == target and row.entry_dn == outcome.entry_dn:
            continue
        changed_state = row.state != target
        row.state, row.entry_dn, row.next_attempt_at = target, outcome.entry_dn, None
        row.save(update_fields=["state", "entry_dn", "next_attempt_at", "updated_at"])
        if changed_state:
            _audit_settled(row, outcome=outcome, written=written, cause=cause, actor=actor)
    for certificate in written:
        if certificate.pk not in seen:
            row = DirectoryPublication(
                certificate=certificate, state=State.PUBLISHED, entry_dn=outcome.entry_dn, last_attempt_at=now
            )
            row.full_clean()
            row.save()
            _audit_settled(row, outcome=outcome, written=written, cause=cause, actor=actor)


def _audit_settled(row: DirectoryPublication, *, outcome, written, cause: Certificate, actor) -> None:
    details = {"serial": row.certificate.serial, "entry_dn": outcome.entry_dn, "synced_for": cause.serial}
    if row.state == State.PUBLISHED:
        details["republished"] = True
    elif row.state == State.SUPERSEDED and written:
        details["superseded_by"] = written[0].serial
    audit_record(action=_STATE_ACTIONS[row.state], actor=actor, obj=row.certificate, details=details)


def _locked(publication: DirectoryPublication) -> DirectoryPublication:
    return (
        DirectoryPublication.objects.select_for_update(of=("self",))
        .select_related("certificate")
        .get(pk=publication.pk)
    )


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
