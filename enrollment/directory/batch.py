"""Attempting directory publications in batches: claim, sync the owners' entries, record.

A chunk of rows costs a fixed number of SQL statements and one directory search (issue 13),
not ~15 statements and a search per row:

1. claim, in a short transaction: the owners are locked (SKIP LOCKED on PostgreSQL, so two
   drains never take the same person; SQLite has one writer anyway), and all their chosen rows
   are marked in flight at once;
2. outside any transaction, over the caller's one bound connection: one search with an OR of
   the mail filter finds the entries, then one sync (plan and modify) per person;
3. one transaction records every row's outcome and appends their audit events together
   (batch_record.py).

A person's rows stay in one chunk and are recorded in id order, so a later row of a person is
never applied before an earlier one. A failure stays with the rows of that person; when the
directory becomes unusable the rest are released, due as before, and not attempted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from core.exceptions import PortalError

from ..models import Certificate, CertificateAuthority, DirectoryPublication, Employee
from ..selectors import CA_WITHOUT_CRL
from . import publisher, selectors
from .batch_record import AttemptResult, Person, batch_record, operation_for
from .client import DirectoryClient, DirectoryError, DirectoryUnavailable, EntryLocator
from .services import CLAIM_SECONDS, DUE_STATES, NO_DIRECTORY, directory_config

logger = logging.getLogger(__name__)

# Rows per chunk: one OR search, one claim and one recording transaction each (slapd's default
# size limit is 500 entries).
CHUNK_ROWS = 100


@dataclass
class BatchOutcome:
    # One result per row looked at, in the order attempted (a person's rows together, by id).
    results: list[AttemptResult] = field(default_factory=list)
    # Rows left when the directory became unusable (the last result says why): still due.
    not_attempted: list[int] = field(default_factory=list)


# --- The entry point -----------------------------------------------------------------------


def publication_attempt(
    *, publication: DirectoryPublication, connection: DirectoryClient | None = None, actor=None
) -> AttemptResult:
    """One row now (the task after issuance or revocation): a batch of one.

    Directory and configuration errors are recorded on the row (and audited), not raised.
    """
    try:
        config = connection.config if connection is not None else directory_config()
        unusable = "" if config is not None else NO_DIRECTORY
    except PortalError as exc:  # ConfigurationError too: recorded, like the directory's own errors
        config, unusable = None, exc.message
    client = connection or (DirectoryClient(config) if config is not None else None)
    try:
        outcome = publications_attempt(pks=[publication.pk], client=client, actor=actor, unusable=unusable)
    finally:
        if connection is None and client is not None:
            client.close()
    if outcome.results:
        return outcome.results[0]
    return AttemptResult(publication=DirectoryPublication.objects.get(pk=publication.pk))


def publications_attempt(
    *,
    pks: Sequence[int],
    client: DirectoryClient | None,
    actor=None,
    due_at: datetime | None = None,
    unusable: str = "",
) -> BatchOutcome:
    """Attempt the rows `pks` (in this order, a person's rows together) in chunks over `client`.

    `due_at`: only rows still due then are taken (the drain); None: the rows whatever their
    time (retry now, the task). `unusable`: the directory cannot be used (a configuration
    error): the first person's rows record it and the rest are not attempted.
    """
    rows = DirectoryPublication.objects.filter(pk__in=list(pks)).values_list("pk", "certificate__employee_id")
    owner = dict(rows)
    by_person: dict[int, list[int]] = {}
    for pk in pks:
        if pk in owner:
            by_person.setdefault(owner[pk], []).append(pk)
    chunks, chunk = [], []
    for person_pks in by_person.values():
        chunk.extend(sorted(person_pks))
        if len(chunk) >= CHUNK_ROWS:
            chunks.append(chunk)
            chunk = []
    if chunk:
        chunks.append(chunk)
    outcome = BatchOutcome()
    issuers = [ca.certificate for ca in CertificateAuthority.objects.defer("crl_der")]
    for number, chunk in enumerate(chunks):
        stopped = _chunk_attempt(chunk, client=client, actor=actor, due_at=due_at, unusable=unusable, issuers=issuers, outcome=outcome)
        if stopped:
            outcome.not_attempted += [pk for later in chunks[number + 1 :] for pk in later]
            break
    return outcome


def _chunk_attempt(chunk, *, client, actor, due_at, unusable, issuers, outcome: BatchOutcome) -> bool:
    """Claim, sync, record one chunk; True when the directory turned out unusable (stop there)."""
    people, skipped, released = _claim(chunk, due_at=due_at)
    if people:
        _sync(people, client=client, issuers=issuers, unusable=unusable)
        results = batch_record(people, actor=actor, released=released)
        outcome.results += results
        outcome.not_attempted += [row.pk for person in people if not person.attempted for row in person.rows]
    outcome.results += [AttemptResult(publication=row) for row in skipped]
    outcome.results.sort(key=lambda result: chunk.index(result.publication.pk) if result.publication.pk in chunk else -1)
    return any(person.unavailable for person in people)


# --- 1. Claim --------------------------------------------------------------------------------


@transaction.atomic
def _claim(chunk: list[int], *, due_at: datetime | None):
    """Lock the rows' owners (skipping those another drain holds) and mark their rows in flight.

    Returns the people with their claimed rows, the rows with nothing to do (or taken by
    another worker), and each claimed row's times before the claim (to release them).
    """
    employee_ids = set(
        DirectoryPublication.objects.filter(pk__in=chunk).values_list("certificate__employee_id", flat=True)
    )
    locked = Employee.objects.select_for_update(skip_locked=True, no_key=True).filter(pk__in=employee_ids)
    employees = {employee.pk: employee for employee in locked.select_related("user")}
    # Not the CAs' stored CRLs: a copy per row, megabytes each with many revoked (issue 13).
    candidates = (
        DirectoryPublication.objects.filter(pk__in=chunk)
        .select_related("certificate__employee__user", "certificate__issuer__parent")
        .defer(*(f"certificate__issuer__{field}" for field in CA_WITHOUT_CRL))
    )
    people: dict[int, Person] = {}
    skipped, released = [], {}
    now = timezone.now()
    for row in sorted(candidates, key=lambda row: row.pk):
        operation = operation_for(row)
        employee = employees.get(row.certificate.employee_id)
        still_due = due_at is None or (row.state in DUE_STATES and row.next_attempt_at and row.next_attempt_at <= due_at)
        if not operation or employee is None or not still_due:
            skipped.append(row)  # nothing to do, or another worker has it
            continue
        person = people.setdefault(employee.pk, Person(employee=employee, rows=[], operations={}))
        person.rows.append(row)
        person.operations[row.pk] = operation
        released[row.pk] = (row.last_attempt_at, row.next_attempt_at)
        row.last_attempt_at, row.next_attempt_at = now, now + timedelta(seconds=CLAIM_SECONDS)
    if released:
        DirectoryPublication.objects.filter(pk__in=list(released)).update(
            last_attempt_at=now, next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS)
        )
    return list(people.values()), skipped, released


# --- 2. Talk to the directory (outside any transaction) ------------------------------------


def _locator(employee: Employee) -> EntryLocator:
    """The employee's entry now: the stored DN wins, else the search for the current mailbox."""
    return EntryLocator(mail=employee.mail, user=employee.user.get_username(), dn=employee.directory_dn)


def _sync(people: list[Person], *, client: DirectoryClient | None, issuers, unusable: str) -> None:
    """Sync each person's entry to what it should hold; stop at the first sign the directory is unusable."""
    if unusable or client is None:
        people[0].attempted, people[0].error, people[0].unavailable = True, unusable or NO_DIRECTORY, True
        return
    employee_ids = [person.employee.pk for person in people]
    wanted = selectors.directory_certificates_by_employee(employee_ids=employee_ids)
    own: dict[int, list[str]] = {pk: [] for pk in employee_ids}
    for employee_id, fingerprint in Certificate.objects.filter(employee_id__in=employee_ids).values_list(
        "employee_id", "fingerprint_sha256"
    ):
        own[employee_id].append(fingerprint)
    elsewhere: dict[int, set[str]] = {pk: set() for pk in employee_ids}
    for employee_id, dn in (
        DirectoryPublication.objects.filter(certificate__employee_id__in=employee_ids)
        .exclude(entry_dn="")
        .values_list("certificate__employee_id", "entry_dn")
    ):
        elsewhere[employee_id].add(dn)
    chains: dict[int, list] = {}
    try:
        mails = [person.employee.mail for person in people if not person.employee.directory_dn]
        entries = client.find_entries_by_mail(mails, attributes=publisher.entry_attributes(client.config)) or {}
    except DirectoryUnavailable as exc:
        people[0].attempted, people[0].error, people[0].unavailable = True, exc.message, True
        return
    for person in people:
        employee = person.employee
        person.attempted = True
        person.written = wanted[employee.pk]
        found = entries.get(employee.mail.lower(), []) if not employee.directory_dn else []
        for certificate in person.written:
            if certificate.issuer_id not in chains:
                chains[certificate.issuer_id] = [ca.certificate for ca in certificate.issuer.chain()]
        try:
            person.outcome = publisher.sync_entry(
                client,
                _locator(employee),
                wanted=[publisher.Wanted(c.x509, chains[c.issuer_id]) for c in person.written],
                issuers=issuers,
                own=own[employee.pk],
                elsewhere=elsewhere[employee.pk],
                entry=found[0] if len(found) == 1 else None,  # none or several: find_entry says so
            )
        except DirectoryError as exc:
            person.error, person.unavailable = exc.message, isinstance(exc, DirectoryUnavailable)
            if person.unavailable:
                return
        except Exception as exc:
            operation = next(iter(person.operations.values()))
            logger.exception("Directory %s for employee %s failed unexpectedly", operation, employee.pk)
            person.error = f"{operation} failed unexpectedly ({type(exc).__name__}); see the server log."
