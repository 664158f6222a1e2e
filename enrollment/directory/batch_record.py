"""Recording what a batch of directory publications did (batch.py step 3), in one transaction per chunk.

Each claimed row gets its outcome (published, superseded, removed, or the failure and the next
attempt) and its audit event; the owner's other rows are settled to what the entry holds now.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_appends_at_end, audit_record

from ..models import Certificate, DirectoryPublication, Employee
from . import publisher, selectors
from .services import DUE_STATES, REMOVE_STATES, State, retry_delay

_FIELDS = ["attempts", "last_error", "entry_dn", "state", "next_attempt_at", "last_attempt_at", "updated_at"]


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


def operation_for(publication: DirectoryPublication) -> str:
    """What the row asks for: "publish" (its certificate belongs on the entry), "unpublish", or ""."""
    if publication.state in REMOVE_STATES:
        return "unpublish"
    if publication.state in (State.PENDING, State.FAILED, State.PUBLISHED):
        # A certificate that is no longer valid, or signing-only, is never (re)published; make sure it is gone.
        return "publish" if selectors.certificate_belongs_in_directory(publication.certificate) else "unpublish"
    return ""


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


@dataclass
class Person:
    """One owner's claimed rows (id order) and what the sync of the entry gave."""

    employee: Employee
    rows: list[DirectoryPublication]
    operations: dict[int, str]
    written: list[Certificate] = field(default_factory=list)
    outcome: publisher.SyncOutcome | None = None
    error: str = ""
    unavailable: bool = False
    attempted: bool = False


# --- 3. Record (one transaction per chunk) --------------------------------------------------


@transaction.atomic
def batch_record(people: list[Person], *, actor, released: dict) -> list[AttemptResult]:
    """Every claimed row's outcome and audit event, in one transaction; the events appended together.

    Lock order as everywhere: the owners' publication rows in id order, then the audit chain.
    """
    employee_ids = [person.employee.pk for person in people]
    rows_of: dict[int, list[DirectoryPublication]] = {pk: [] for pk in employee_ids}
    for row in (
        DirectoryPublication.objects.select_for_update(of=("self",))
        .select_related("certificate")
        .filter(certificate__employee_id__in=employee_ids)
        .order_by("pk")
    ):
        rows_of[row.certificate.employee_id].append(row)
    # A certificate issued, revoked or expired while we talked to the directory: that person goes again.
    wanted_now = selectors.directory_certificates_by_employee(employee_ids=employee_ids)
    removed = {fp for person in people if person.outcome for fp in person.outcome.removed}
    serial_of = dict(Certificate.objects.filter(fingerprint_sha256__in=removed).values_list("fingerprint_sha256", "serial"))
    now = timezone.now()
    changed: list[DirectoryPublication] = []
    results: list[AttemptResult] = []
    with audit_appends_at_end():
        for person in people:
            claimed = {row.pk: row for row in person.rows}
            mine = [row for row in rows_of[person.employee.pk] if row.pk in claimed]
            if not person.attempted:
                for row in mine:  # not attempted: due again as before, unless rescheduled meanwhile
                    if row.next_attempt_at == claimed[row.pk].next_attempt_at:
                        row.last_attempt_at, row.next_attempt_at = released[row.pk]
                        changed.append(row)
                continue
            for row in mine:
                row.updated_at = now
                operation = person.operations[row.pk]
                if person.outcome is None:
                    _failure(row, operation=operation, error=person.error, actor=actor, now=now)
                    results.append(
                        AttemptResult(row, operation, ok=False, error=person.error, unavailable=person.unavailable)
                    )
                else:
                    results.append(AttemptResult(row, operation))
            if person.outcome is not None:
                settled = [c.pk for c in wanted_now[person.employee.pk]] == [c.pk for c in person.written]
                _successes(person, mine, settled=settled, serial_of=serial_of, actor=actor, now=now)
                if settled:
                    others = [row for row in rows_of[person.employee.pk] if row.pk not in claimed]
                    changed += _settle_others(others, person=person, cause=mine[0].certificate, actor=actor, now=now)
            changed += mine
        _rows_save(changed)
    return results


def _rows_save(rows: list[DirectoryPublication]) -> None:
    """One UPDATE per distinct set of values. Not bulk_update: it builds a CASE per field and row,
    and compiling and running that took 42 % of a 1,000-row drain on PostgreSQL (issue 13)."""
    groups: dict[tuple, set[int]] = defaultdict(set)
    for row in rows:
        groups[tuple(getattr(row, name) for name in _FIELDS)].add(row.pk)
    for values, pks in groups.items():
        DirectoryPublication.objects.filter(pk__in=sorted(pks)).update(**dict(zip(_FIELDS, values, strict=True)))


def _failure(row: DirectoryPublication, *, operation: str, error: str, actor, now: datetime) -> None:
    row.attempts += 1
    row.last_error = error
    if operation_for(row) == operation:
        row.state = State.FAILED if operation == "publish" else State.REMOVE_FAILED
    row.next_attempt_at = now + retry_delay(row.attempts)
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


def _successes(person: Person, rows, *, settled: bool, serial_of: dict, actor, now: datetime) -> None:
    """The person's claimed rows after the sync; the first carries what the sync changed, the others found it done."""
    outcome, written = person.outcome, person.written
    for number, row in enumerate(rows):
        final = _state_for(row, written)
        row.attempts += 1
        row.last_error = ""
        row.entry_dn = outcome.entry_dn
        if settled:
            row.state, row.next_attempt_at = final, None
        else:
            row.next_attempt_at = now
        details = {
            "serial": row.certificate.serial,
            "entry_dn": outcome.entry_dn,
            "attempt": row.attempts,
            "changed": outcome.changed and number == 0,
        }
        if number == 0:
            replaced = sorted(serial_of[fp] for fp in outcome.removed if fp in serial_of)
            replaced = [serial for serial in replaced if serial != row.certificate.serial]
            if replaced:
                details["replaced"] = replaced
            if outcome.cleaned:
                details["removed_from"] = outcome.cleaned
        if final == State.SUPERSEDED and written:
            details["superseded_by"] = written[0].serial
        published = [c.serial for c in written if c.pk != row.certificate_id]
        if final != State.PUBLISHED and published:
            details["published"] = published
        audit_record(action=_STATE_ACTIONS[final], actor=actor, obj=row.certificate, details=details)


def _settle_others(rows, *, person: Person, cause: Certificate, actor, now: datetime) -> list[DirectoryPublication]:
    """The owner's other rows after a sync: the entry holds `written` now. Returns the rows to save.

    Rows with work of their own left (due) keep it: their attempt finds nothing to do and
    records it. Settled rows whose state the sync changed are updated and audited, such as
    an older certificate published again after the newer one was revoked; and a wanted
    certificate without a row (issued before the directory was configured) gets one.
    """
    outcome, written = person.outcome, person.written
    changed, seen = [], {cause.pk} | {row.certificate_id for row in person.rows}
    for row in rows:
        seen.add(row.certificate_id)
        if row.state in DUE_STATES:
            continue
        target = _state_for(row, written)
        if row.state == target and row.entry_dn == outcome.entry_dn:
            continue
        state_changed = row.state != target
        row.state, row.entry_dn, row.next_attempt_at, row.updated_at = target, outcome.entry_dn, None, now
        changed.append(row)
        if state_changed:
            _audit_settled(row, outcome=outcome, written=written, cause=cause, actor=actor)
    for certificate in written:
        if certificate.pk not in seen:
            row = DirectoryPublication(
                certificate=certificate, state=State.PUBLISHED, entry_dn=outcome.entry_dn, last_attempt_at=now
            )
            row.full_clean()
            row.save()
            _audit_settled(row, outcome=outcome, written=written, cause=cause, actor=actor)
    return changed


def _audit_settled(row: DirectoryPublication, *, outcome, written, cause: Certificate, actor) -> None:
    details = {"serial": row.certificate.serial, "entry_dn": outcome.entry_dn, "synced_for": cause.serial}
    if row.state == State.PUBLISHED:
        details["republished"] = True
    elif row.state == State.SUPERSEDED and written:
        details["superseded_by"] = written[0].serial
    audit_record(action=_STATE_ACTIONS[row.state], actor=actor, obj=row.certificate, details=details)
