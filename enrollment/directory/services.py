"""Directory publication workflow: schedule, attempt, record, drain.

The database says what must happen (DirectoryPublication rows, an outbox); the LDAP call
happens outside any database transaction, and its outcome is recorded in a short one
afterwards, with an audit event for every attempt. Callers:

- the post_issue_certificate receiver: publication_schedule() inside the issuance
  transaction, then tasks.directory_publication_run() after commit;
- revocation (later): publication_schedule_removal() in its transaction, then the same task;
- the admin's "Retry publication now" action and the API's retry: publications_retry();
- `manage.py publish_pending` (cron / a periodic task): publications_drain().

Also here: ca_entry_publish() (the CA certificate and CRL on PORTAL_LDAP_CA_ENTRY_DN, after
each CRL and from `manage.py publish_ca`) and directory_user_sync() (what a directory
log-in copies into the portal: the Employee row and the roles the directory decides).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record
from core.exceptions import ConfigurationError, NotAllowed, NotFound, PortalError

from ..models import Certificate, CertificateAuthority, DirectoryPublication, Employee
from ..revocation.services import crl_current
from ..services.employees import employee_upsert
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


# --- Draining what is due ----------------------------------------------------------------


@dataclass
class DrainSummary:
    due: int = 0
    published: int = 0
    removed: int = 0
    superseded: int = 0
    failed: int = 0
    # Set when the directory could not be used: the drain stopped there.
    unavailable: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.published + self.removed + self.superseded + self.failed

    def __str__(self) -> str:
        parts = [f"{self.published} published", f"{self.removed} removed"]
        if self.superseded:
            parts.append(f"{self.superseded} superseded")
        parts.append(f"{self.failed} failed")
        return f"{self.attempted} of {self.due} due publication(s) attempted: " + ", ".join(parts) + "."


def publications_due(*, now: datetime | None = None, include_not_due: bool = False):
    rows = DirectoryPublication.objects.filter(state__in=DUE_STATES)
    if not include_not_due:
        rows = rows.filter(next_attempt_at__lte=now or timezone.now())
    return rows.order_by("next_attempt_at", "pk")


def _attempts(pks: Iterable[int], *, config: DirectoryConfig, actor=None) -> Iterator[AttemptResult]:
    """Attempt the rows one after another over one connection (network outside any transaction).

    Stops after an attempt that found the directory unusable (unreachable, TLS, bind refused):
    the others would fail alike. Rows that no longer exist are passed over.
    """
    with DirectoryClient(config) as client:
        for pk in pks:
            publication = DirectoryPublication.objects.filter(pk=pk).first()
            if publication is None:
                continue
            result = publication_attempt(publication=publication, connection=client, actor=actor)
            yield result
            if result.unavailable:
                return


def publications_drain(
    *, now: datetime | None = None, include_not_due: bool = False, limit: int | None = None
) -> DrainSummary:
    """Attempt every row that is due, over one connection; stop if the directory is unusable.

    When the directory cannot be reached (or refuses the bind), the row at hand records the
    failure and the drain stops: the others would fail alike, and stay due.
    """
    rows = list(publications_due(now=now, include_not_due=include_not_due).values_list("pk", flat=True)[:limit])
    summary = DrainSummary(due=len(rows))
    if not rows:
        return summary
    try:
        config = directory_config()
    except PortalError as exc:
        summary.unavailable = exc.message
        return summary
    if config is None:
        summary.unavailable = NO_DIRECTORY
        return summary
    for result in _attempts(rows, config=config):
        if result.skipped:
            summary.due -= 1
            continue
        if not result.ok:
            summary.failed += 1
            summary.errors.append(f"{result.publication.certificate.serial}: {result.error}")
            if result.unavailable:
                summary.unavailable = result.error
            continue
        state = result.publication.state
        if state == State.PUBLISHED:
            summary.published += 1
        elif state == State.SUPERSEDED:
            summary.superseded += 1
        else:
            summary.removed += 1
    return summary


# --- Retry now (the admin action and the API): chosen rows, due or not -------------------


class DirectoryNotConfigured(ConfigurationError):
    """PORTAL_LDAP_URI is empty: there is nothing to publish to."""


@dataclass
class RetryOutcome:
    # One result per row attempted, in id order (a result may be `skipped`: nothing to do).
    results: list[AttemptResult] = field(default_factory=list)
    # The ids left when an attempt found the directory unusable (its result says why).
    not_attempted: list[int] = field(default_factory=list)


def publications_retry(*, publication_ids: Iterable[int], actor) -> RetryOutcome:
    """Attempt the given directory publications now, whether due or not, over one connection.

    Each attempt is recorded on its row and audited with `actor` (publication_attempt); a failed
    attempt is an outcome, not an exception. When one finds the directory unusable the rest are
    not attempted (`not_attempted`). Raises NotAllowed without enrollment.retry_directorypublication,
    NotFound for an unknown id, DirectoryNotConfigured without PORTAL_LDAP_URI and
    ConfigurationError for directory settings that cannot work; then nothing is attempted.
    """
    if actor is not None and not (actor.is_active and actor.has_perm("enrollment.retry_directorypublication")):
        raise NotAllowed("You may not retry directory publications.")
    pks = sorted(set(publication_ids))
    missing = sorted(set(pks) - set(DirectoryPublication.objects.filter(pk__in=pks).values_list("pk", flat=True)))
    if missing:
        raise NotFound(f"There is no directory publication {', '.join(f'#{pk}' for pk in missing)}.")
    config = directory_config()
    if config is None:
        raise DirectoryNotConfigured(NO_DIRECTORY)
    outcome = RetryOutcome(results=list(_attempts(pks, config=config, actor=actor)))
    if outcome.results and outcome.results[-1].unavailable:
        outcome.not_attempted = [pk for pk in pks if pk > outcome.results[-1].publication.pk]
    return outcome


# --- The CA entry: CA certificate and current CRL ----------------------------------------


@dataclass
class CaPublishOutcome:
    ok: bool = True
    # No directory or no PORTAL_LDAP_CA_ENTRY_DN: nothing to do.
    skipped: bool = False
    entry_dn: str = ""
    changed: bool = False
    error: str = ""

    def __str__(self) -> str:
        if self.skipped:
            return "No CA entry is configured (PORTAL_LDAP_URI and PORTAL_LDAP_CA_ENTRY_DN)."
        if not self.ok:
            return self.error
        return f"{self.entry_dn}: " + ("CA certificate and CRL written." if self.changed else "already current.")


def ca_entry_publish(*, ca: CertificateAuthority, connection: DirectoryClient | None = None, actor=None) -> CaPublishOutcome:
    """Put `ca`'s certificate and current CRL on the CA entry, replacing what is there.

    Never raises for directory or configuration errors: they are logged and audited
    (`directory.ca_publish_failed`) and returned; the next CRL or `manage.py publish_ca`
    tries again. Success is audited as `directory.ca_published`.
    """
    try:
        config = connection.config if connection is not None else directory_config()
    except PortalError as exc:
        return _ca_publish_failed(ca=ca, entry_dn="", error=exc.message, actor=actor)
    if config is None or not config.ca_entry_dn:
        return CaPublishOutcome(skipped=True)
    ca = CertificateAuthority.objects.get(pk=ca.pk)  # the caller's copy may predate the latest CRL
    client = connection or DirectoryClient(config)
    try:
        crl = crl_current(ca=ca)  # the stored CRL, or a fresh one when it is about to go stale
        result = publisher.publish_ca(
            client, dn=config.ca_entry_dn, certificate_der=bytes(ca.certificate_der), crl_der=bytes(crl)
        )
    except PortalError as exc:  # DirectoryError, or no CRL could be signed
        return _ca_publish_failed(ca=ca, entry_dn=config.ca_entry_dn, error=exc.message, actor=actor)
    except Exception as exc:
        logger.exception("Publishing CA %s to %s failed unexpectedly", ca.slug, config.ca_entry_dn)
        error = f"publishing the CA entry failed unexpectedly ({type(exc).__name__}); see the server log."
        return _ca_publish_failed(ca=ca, entry_dn=config.ca_entry_dn, error=error, actor=actor)
    finally:
        if connection is None:
            client.close()
    ca.refresh_from_db(fields=["crl_number"])  # crl_current may have signed a new one
    audit_record(
        action=AuditAction.DIRECTORY_CA_PUBLISHED,
        actor=actor,
        obj=ca,
        details={"ca": ca.slug, "entry_dn": result.entry_dn, "changed": result.changed, "crl_number": ca.crl_number},
    )
    return CaPublishOutcome(entry_dn=result.entry_dn, changed=result.changed)


def _ca_publish_failed(*, ca: CertificateAuthority, entry_dn: str, error: str, actor) -> CaPublishOutcome:
    logger.warning("Publishing CA %s to the directory entry %s failed: %s", ca.slug, entry_dn or "(none)", error)
    audit_record(
        action=AuditAction.DIRECTORY_CA_PUBLISH_FAILED, actor=actor, obj=ca, details={"ca": ca.slug, "entry_dn": entry_dn, "error": error}
    )
    return CaPublishOutcome(ok=False, entry_dn=entry_dn, error=error)


# --- Directory log-in: what it copies into the portal -------------------------------------


@dataclass
class DirectoryUserSync:
    employee: Employee | None = None
    granted: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    # Why the Employee row could not be written (another employee has the mailbox, …).
    employee_error: str = ""


@transaction.atomic
def directory_user_sync(
    *, user, entry_dn: str, roles: Mapping[str, bool], mail: str = "", given_name: str = "", surname: str = ""
) -> DirectoryUserSync:
    """After a directory log-in: copy the entry into the Employee row and set the directory's roles.

    `roles` names only the roles the directory decides (a group DN is configured for them),
    each with whether the user is a member now: those are granted or taken away; every other
    role (Key recovery agents, say) is left alone. A role member gets is_staff (the admin);
    losing the last role takes it away again. Without a mail
    address there is no Employee row (an approver need not be an employee); an existing row
    keeps its department.

    Only for directory accounts (the caller, portal/ldap_auth.py, decides which users those
    are): superusers are local accounts and are refused here too (PortalError), and nothing
    here ever sets is_superuser.
    """
    if user.is_superuser:
        raise PortalError(f"{user.get_username()} is a superuser; the directory never changes superusers")
    result = DirectoryUserSync()
    current = set(user.groups.values_list("name", flat=True))
    result.granted = sorted(role for role, member in roles.items() if member and role not in current)
    result.revoked = sorted(role for role, member in roles.items() if not member and role in current)
    if result.granted:
        user.groups.add(*(Group.objects.get_or_create(name=role)[0] for role in result.granted))
    if result.revoked:
        user.groups.remove(*Group.objects.filter(name__in=result.revoked))
    is_staff = user.is_staff
    if any(roles.values()):
        is_staff = True
    elif result.revoked and not user.is_superuser and not user.groups.exists():
        is_staff = False
    if is_staff != user.is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])

    if mail:
        existing = Employee.objects.filter(user=user).first()
        try:
            result.employee = employee_upsert(
                user=user,
                mail=mail,
                given_name=given_name[: Employee._meta.get_field("given_name").max_length],
                surname=surname[: Employee._meta.get_field("surname").max_length],
                department=existing.department if existing else "",
                directory_dn=entry_dn,
            )
        except ValidationError as exc:
            result.employee = existing
            result.employee_error = " ".join(exc.messages)
            logger.warning(
                "Directory log-in of %s: employee record not updated from %s: %s",
                user.get_username(), entry_dn, result.employee_error,
            )
    else:
        result.employee = Employee.objects.filter(user=user).first()

    if result.granted or result.revoked:
        audit_record(
            action=AuditAction.AUTH_ROLES_CHANGED,
            actor=user,
            obj=user,
            details={"source": "directory", "entry_dn": entry_dn, "granted": result.granted, "revoked": result.revoked},
        )
    return result
