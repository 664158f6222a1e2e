"""Bulk enrollment: employees and their certificate requests from a CSV file or a directory group.

The edges (`manage.py enroll`, the admin's and the API's batches) call `enrollment_batch_run`
(bulk_batches.py), which goes through the steps here:

1. the rows: `bulk_file_read(data, name=...)` (bulk_file.py; a file that is not a CSV of the
   form raises `BulkFileRefused`, one readable line), or a group's members (directory/groups.py);
2. `bulk_plan(rows, ...)`: every row checked without writing, with the rules the services apply
   (pki.names, the mail-domain rule, key and certificate types), what only the whole file shows
   (a username or mailbox on two rows) and what the database holds, asked a few times per file
   rather than per row. Each row ends up `create` (employee + request), `request` (an existing
   employee who never had a request), `skip` (already enrolled: a note says why), or bad;
3. `bulk_apply(plan, ...)`: per row `employee_create` then `certificate_request_create` (a row
   the services refuse is rolled back whole and reported, the others proceed), or with `atomic`
   the file in one transaction. Every employee and request is audited by its service;
4. the run is an `EnrollmentBatch` (models_batches.py, bulk_batches.py): who, when, the source,
   the counts, the failed rows; its requests link to it.

Existing employees are never changed by a batch: a changed mailbox or name of a certified person
is an identity change, which needs a second person (services.identity_changes). A row whose
username is enrolled under another mailbox, or whose mailbox belongs to another employee, is bad;
an employee who already had any request (whatever became of it) is skipped, so running the same
file twice creates nothing new.

Requests are filed by the actor, a PKI administrator, and wait for an approver (a second person,
neither the employee nor the submitter) - unless the organization has decided otherwise: with
PORTAL_ENROLLMENT_AUTO_APPROVE on, the requests of a batch that a PKI administrator starts are
approved by policy at once (`request.auto_approved`, naming the policy, the batch and who
started it) and issued after commit: by the workers with a broker, in this process without.
Why that keeps separation of duties: the second person's check of a request is that the person
and mailbox are really the organization's; for a roll-out from the HR export or the directory,
that check is the organization's decision to enroll the list (taken once, in writing, by
whoever sets the policy), not something an approver can verify person by person for 50,000
rows. The policy is a setting (it cannot be turned on from the portal), applies only to new
requests of PKI administrators' batches (never to an employee's own request or an approver's),
never changes an existing employee, and every decision it makes is audited with its batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction

from audit.services import audit_appends_at_end
from core.db import retry_on_conflict
from core.exceptions import PortalError

from .bulk_file import (  # noqa: F401 - the CSV side, used by the command through this module
    COLUMNS,
    MAX_RECORDED_FAILURES,
    REQUIRED_COLUMNS,
    WEB_ISSUANCE_LIMIT,
    BatchOutcome,
    BulkFileRefused,
    BulkPlan,
    BulkRow,
    bulk_failures,
    bulk_file_read,
    bulk_report_write,
    bulk_rows_from_records,
    spreadsheet_safe,
)
from .models import CertificateRequest, Employee, EnrollmentBatch
from .pki.keys import KEY_TYPES
from .pki.profiles import CERTIFICATE_TYPES
from .services.employees import employee_create, mail_domain_error, normalized_values
from .services.requests import certificate_request_approve_by_policy, certificate_request_create

_NAME_FIELDS = ("given_name", "surname", "department")
_CHUNK = 500  # values per IN (...) query: well below SQLite's and PostgreSQL's parameter limits


# --- 2. Checking every row, and what the database holds -----------------------------------------


def _messages(exc: ValidationError) -> list[tuple[str, str]]:
    if hasattr(exc, "error_dict"):
        return [
            ("" if name == NON_FIELD_ERRORS else name, message)
            for name, messages in exc.message_dict.items()
            for message in messages
        ]
    return [("", message) for message in exc.messages]


def _row_check(row: BulkRow, *, key_type: str, certificate_type: str) -> None:
    """The rules of employee_create and certificate_request_create that need no database."""
    user_model = get_user_model()
    values = normalized_values({name: row.value(name) for name in ("mail", *_NAME_FIELDS)})
    candidate = Employee(**values)
    try:
        candidate.clean_fields(exclude=["user", "directory_dn"])
    except ValidationError as exc:
        row.errors.extend(_messages(exc))
    mail_ok = not any(name == "mail" for name, _ in row.errors)
    if mail_ok and (domain_error := mail_domain_error(candidate.mail)):
        row.refuse("mail", domain_error)
    # Without a username the account is named by the mailbox (unique, and what the person knows).
    username = user_model.normalize_username(row.value("username")) or (candidate.mail.lower() if mail_ok else "")
    if username:
        account = user_model(username=username)
        others = [f.name for f in user_model._meta.fields if f.name != user_model.USERNAME_FIELD]
        try:
            account.clean_fields(exclude=others)
        except ValidationError as exc:
            row.errors.extend(_messages(exc))
    row_key_type = row.value("key_type") or key_type
    row_certificate_type = row.value("certificate_type") or certificate_type
    if row_key_type not in KEY_TYPES:
        row.refuse("key_type", f"Unknown key type {row_key_type!r}; choose one of {', '.join(KEY_TYPES)}.")
    if row_certificate_type not in CERTIFICATE_TYPES:
        row.refuse(
            "certificate_type",
            f"Unknown certificate type {row_certificate_type!r}; choose one of {', '.join(CERTIFICATE_TYPES)}.",
        )
    elif row_certificate_type == "sponsor-strict":
        for name, label in (("given_name", "given name"), ("surname", "surname")):
            if not getattr(candidate, name) and not any(error[0] == name for error in row.errors):
                row.refuse(name, f"is empty: a sponsor-validated certificate names the person's {label}.")
    # What the later steps compare: the forms the services store.
    row.values = {
        **row.values,
        "_username": username,
        "_mail": candidate.mail.lower(),
        "_key_type": row_key_type,
        "_certificate_type": row_certificate_type,
        **{f"_{name}": getattr(candidate, name) for name in _NAME_FIELDS},
    }


def _duplicates_check(rows: list[BulkRow]) -> None:
    """A username or mailbox on two rows: a repeated row (same username and mailbox) is refused after
    its first occurrence; a conflict (one mailbox, two usernames, or the reverse) refuses every row of
    it, since which one is right is a question for whoever wrote the file."""
    by_mail: dict[str, list[BulkRow]] = defaultdict(list)
    by_username: dict[str, list[BulkRow]] = defaultdict(list)
    for row in rows:
        if row.values.get("_mail"):
            by_mail[row.values["_mail"]].append(row)
        if row.values.get("_username"):
            by_username[row.values["_username"]].append(row)
    for other_key, groups, what in (("_username", by_mail, "mail"), ("_mail", by_username, "username")):
        for value, group in groups.items():
            if len(group) < 2:
                continue
            lines = ", ".join(str(row.line) for row in group)
            if len({row.values.get(other_key) for row in group}) > 1:
                other = "usernames" if what == "mail" else "mailboxes"
                for row in group:
                    row.refuse(what, f"{value} is on lines {lines} with different {other}: which is right?")
            else:
                for row in group[1:]:
                    row.refuse(what, f"{value} repeats line {group[0].line}.")


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    values = sorted(set(values))
    for index in range(0, len(values), _CHUNK):
        yield values[index : index + _CHUNK]


def _existing_check(rows: list[BulkRow]) -> None:
    """Decide create / request / skip / bad against the database: three kinds of query per file."""
    user_model = get_user_model()
    good = [row for row in rows if not row.bad]
    accounts = {}
    for chunk in _chunks(row.values["_username"] for row in good):
        for account in user_model.objects.filter(**{f"{user_model.USERNAME_FIELD}__in": chunk}).select_related(
            "employee"
        ):
            accounts[account.get_username()] = account
    mail_owners = {}
    for chunk in _chunks(row.values["_mail"] for row in good):
        for mail, owner in Employee.objects.filter(mail__in=chunk).values_list("mail", "user__username"):
            mail_owners[mail.lower()] = owner
    employee_ids = [
        account.employee.pk for account in accounts.values() if getattr(account, "employee", None) is not None
    ]
    latest_request = {}
    for index in range(0, len(employee_ids), _CHUNK):
        for employee_id, pk, state in (
            CertificateRequest.objects.filter(employee_id__in=employee_ids[index : index + _CHUNK])
            .order_by("employee_id", "-pk")
            .values_list("employee_id", "pk", "state")
        ):
            latest_request.setdefault(employee_id, (pk, state))
    for row in good:
        username, mail = row.values["_username"], row.values["_mail"]
        account = accounts.get(username)
        employee = getattr(account, "employee", None) if account is not None else None
        if employee is None:
            if (owner := mail_owners.get(mail)) is not None:
                row.refuse("mail", f"{mail} is the mailbox of the employee {owner} already.")
            elif account is not None and not account.is_active:
                row.refuse("username", f"The account {username} is deactivated (offboarded?): not enrolled again.")
            else:
                row.action = "create"
                row.note = "existing account" if account is not None else ""
            continue
        if employee.mail.lower() != mail:
            row.refuse(
                "mail",
                f"{username} is enrolled with {employee.mail}; a new mailbox is an identity change "
                '("Request identity change" in the admin, confirmed by a second person), not a bulk row.',
            )
            continue
        different = [name for name in _NAME_FIELDS if getattr(employee, name) != row.values[f"_{name}"]]
        kept = f"; the record is kept ({', '.join(different)} differ from the file)" if different else ""
        if not account.is_active:
            row.action, row.note = "skip", f"the account is deactivated (offboarded){kept}"
        elif employee.pk in latest_request:
            pk, state = latest_request[employee.pk]
            row.action, row.note = "skip", f"already enrolled (request #{pk} is {state}){kept}"
        else:
            row.action, row.note, row.employee_id = "request", f"existing employee without a request{kept}", employee.pk


def bulk_plan(rows: list[BulkRow], *, key_type: str = "rsa-3072", certificate_type: str = "sponsor-strict") -> BulkPlan:
    """Check every row (nothing is written); see the module's docstring."""
    for row in rows:
        if not row.bad:
            _row_check(row, key_type=key_type, certificate_type=certificate_type)
    _duplicates_check(rows)
    _existing_check(rows)
    return BulkPlan(rows=rows, key_type=key_type, certificate_type=certificate_type)


# --- 3. Writing through the services -----------------------------------------------------------


AUTO_APPROVE_POLICY = "PORTAL_ENROLLMENT_AUTO_APPROVE"


def _row_write(row: BulkRow, *, actor, batch: EnrollmentBatch | None = None) -> CertificateRequest:
    if row.action == "create":
        directory_dn = {"directory_dn": row.value("directory_dn")} if row.value("directory_dn") else {}
        employee = employee_create(
            actor=actor,
            username=row.values["_username"],
            mail=row.value("mail"),
            **{name: row.value(name) for name in _NAME_FIELDS},
            **directory_dn,
        )
    else:
        employee = Employee.objects.select_related("user").get(pk=row.employee_id)
    request = certificate_request_create(
        employee=employee,
        submitted_by=actor,
        key_type=row.values["_key_type"],
        certificate_type=row.values["_certificate_type"],
        batch=batch,
        notify_pending=batch is None,  # a batch's approvers get one mail for it (bulk_batches.py)
    )
    if batch is not None and batch.approved_by_policy:
        starter = batch.started_by.get_username()
        certificate_request_approve_by_policy(
            request=request,
            reason=f"Approved by policy ({AUTO_APPROVE_POLICY}): enrollment batch #{batch.pk}, started by {starter}.",
            details={"policy": AUTO_APPROVE_POLICY, "batch": batch.pk, "source": batch.source, "started_by": starter},
        )
    return request


# Rows per transaction: a commit per row was 40 % of a row's time on PostgreSQL. The audit events of
# a transaction's rows are appended together at its end, so the chain's lock (which the issuing
# workers need too) is held for those appends and the commit only, not while the rows are written.
ROWS_PER_TRANSACTION = 25


def _row_try(row: BulkRow, *, actor, batch: EnrollmentBatch | None, events: list) -> bool:
    recorded = len(events)
    try:
        with transaction.atomic():  # a savepoint: a row the services refuse is rolled back whole, alone
            _row_write(row, actor=actor, batch=batch)
        return True
    except ValidationError as exc:
        row.errors.extend(_messages(exc))
    except PortalError as exc:
        row.errors.append(("", exc.message))
    del events[recorded:]  # the refused row's events go with it
    return False


@retry_on_conflict
@transaction.atomic
def _rows_apply(rows: list[BulkRow], *, actor, batch: EnrollmentBatch | None) -> int:
    for row in rows:
        row.errors = []  # a rerun after a deadlock starts afresh (only good rows come here)
    with audit_appends_at_end() as events:
        return sum(_row_try(row, actor=actor, batch=batch, events=events) for row in rows)


class _RollBack(Exception):
    pass


def bulk_apply(
    plan: BulkPlan,
    *,
    actor,
    atomic: bool = False,
    progress: Callable[[], None] = lambda: None,
    batch: EnrollmentBatch | None = None,
) -> int:
    """Write the plan's good rows; returns how many were written (0 with `atomic` and any failure).

    A row the services refuse gets their errors and is rolled back whole (employee and request),
    the others commit in groups of ROWS_PER_TRANSACTION; with `atomic`, every row is still tried
    (so that all failures are reported) and then the whole file is rolled back if any failed.
    """
    todo = [row for row in plan.rows if not row.bad and row.action in ("create", "request")]
    written = 0

    def apply_all() -> None:
        nonlocal written
        for start in range(0, len(todo), ROWS_PER_TRANSACTION):
            rows = todo[start : start + ROWS_PER_TRANSACTION]
            written += _rows_apply(rows, actor=actor, batch=batch)
            for _ in rows:
                progress()

    if not atomic:
        apply_all()
        return written
    try:
        with transaction.atomic():
            apply_all()
            if any(row.bad for row in todo):
                raise _RollBack
    except _RollBack:
        written = 0
    return written
