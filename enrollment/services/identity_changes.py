"""Identity changes that valid certificates bind: one person asks, a second one confirms, and the
certificates naming the old identity are revoked in the same transaction.

Why two people and a revocation. A certificate asserts the mailbox (and, sponsor-validated,
the given name and surname) of its holder to everyone who receives signed mail or encrypts to
it; the portal also publishes it at the employee's directory entry. A changed identity must
not keep valid certificates naming the old one: the old mailbox may be given to somebody
else, and mail encrypted to the old certificate would reach whoever holds its key. So the
confirmation revokes them (affiliationChanged: RFC 5280 5.3.1 uses it for a changed subject
name or other subject information) and the person requests new ones. That revocation
destroys the use of someone's keys and changes who they are to the outside: done by one
administrator it would let that person do either unnoticed, so a second person (another PKI
administrator or an approver; never the requester, never the employee) confirms it. The
directory DN is bound too (a new DN attaches the certificates to another entry), but the
certificates do not name it, so a DN change alone revokes nothing.

Changes no valid certificate binds stay one audited step (employees.employee_update). The
directory log-in (directory.user_sync) writes new records and unbound changes itself,
audited with the directory as the source, and opens a request for bound ones.

Locks: the employee row first, then the request row (every writing function here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record
from core.exceptions import InvalidState, NotAllowed, NotFound, PortalError, SeparationOfDuties

from .. import signals
from ..models import Employee, IdentityChangeRequest
from ..revocation.services import certificate_revoke
from ..roles import APPROVERS, is_pki_administrator
from .employees import (
    IDENTITY_FIELDS,
    IDENTITY_LABELS,
    employee_update,
    identity_bindings,
    mail_domain_error,
    normalized_values,
)

REQUEST_DAYS = 14  # an undecided request expires after this; the requester may withdraw it before
ADMIN = "admin"
DIRECTORY = "directory log-in"
# What the confirmation revokes: the fields certificates name (not the directory DN).
NAMED_FIELDS = ("mail", "given_name", "surname")
State = IdentityChangeRequest.State


def _locked_employee(employee: Employee) -> Employee:
    return Employee.objects.select_for_update(of=("self",), no_key=True).select_related("user").get(pk=employee.pk)


def _changes(employee: Employee, wanted: dict) -> dict[str, dict[str, str]]:
    unknown = set(wanted) - set(IDENTITY_FIELDS)
    if unknown:
        raise ValidationError({name: "This field is not part of an identity change." for name in sorted(unknown)})
    values = normalized_values(wanted)
    return {
        name: {"old": getattr(employee, name), "new": value}
        for name, value in sorted(values.items())
        if value != getattr(employee, name)
    }


def _check_new_values(employee: Employee, changes: dict) -> None:
    errors = {}
    if "mail" in changes:
        mail = changes["mail"]["new"]
        if domain_error := mail_domain_error(mail):
            errors["mail"] = domain_error
        elif Employee.objects.filter(mail=mail).exclude(pk=employee.pk).exists():
            errors["mail"] = f"Another employee has the mailbox {mail}."
    for name in ("given_name", "surname"):
        limit = Employee._meta.get_field(name).max_length
        if name in changes and len(changes[name]["new"]) > limit:
            errors[name] = f"At most {limit} characters."
    if errors:
        raise ValidationError(errors)


def _expire_stale(employee: Employee) -> None:
    for stale in IdentityChangeRequest.objects.select_for_update().filter(
        employee=employee, state=State.PENDING, expires_at__lte=timezone.now()
    ):
        _close(stale, state=State.EXPIRED, actor=None, action=AuditAction.EMPLOYEE_IDENTITY_CHANGE_EXPIRED)


def _open(*, employee: Employee, requested_by, source: str, reason: str, wanted: dict) -> IdentityChangeRequest:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the identity changes."})
    changes = _changes(employee, wanted)
    if not changes:
        raise ValidationError("Nothing changes: the record has these values already.")
    bound = identity_bindings(employee=employee, fields=changes)
    if not bound:
        raise InvalidState(
            f"No valid certificate binds the {', '.join(IDENTITY_LABELS[n] for n in changes)} of {employee.mail}: "
            "change the employee directly (one audited step)."
        )
    _check_new_values(employee, changes)
    _expire_stale(employee)
    open_request = IdentityChangeRequest.objects.filter(employee=employee, state=State.PENDING).first()
    if open_request is not None:
        raise InvalidState(
            f"Identity change #{open_request.pk} of {employee.mail} is open already (asked for by "
            f"{_requester(open_request)}): it is confirmed, rejected or withdrawn first."
        )
    revoke = sorted({serial for name, serials in bound.items() if name in NAMED_FIELDS for serial in serials})
    request = IdentityChangeRequest(
        employee=employee,
        changes=changes,
        reason=reason,
        source=source,
        requested_by=requested_by,
        expires_at=timezone.now() + timedelta(days=REQUEST_DAYS),
    )
    request.full_clean()
    request.save()
    audit_record(
        action=AuditAction.EMPLOYEE_IDENTITY_CHANGE_REQUESTED,
        actor=requested_by,
        obj=employee,
        details={
            "username": employee.user.get_username(),
            "request": request.pk,
            "source": source,
            "reason": reason,
            "changes": changes,
            "bound_by": bound,
            "revoked_on_confirmation": revoke,
        },
    )
    return request


def _requester(request: IdentityChangeRequest) -> str:
    return request.requested_by.get_username() if request.requested_by_id else f"the {request.source}"


@transaction.atomic
def identity_change_request_create(*, employee: Employee, actor, reason: str, **changes) -> IdentityChangeRequest:
    """A PKI administrator asks for a change of fields valid certificates bind; nothing changes yet."""
    if actor is None or not (actor.is_active and is_pki_administrator(actor)):
        raise NotAllowed("Only PKI administrators ask for identity changes.")
    employee = _locked_employee(employee)
    if actor.pk == employee.user_id:
        raise SeparationOfDuties("You cannot ask for a change of your own identity: another PKI administrator does.")
    return _open(employee=employee, requested_by=actor, source=ADMIN, reason=reason, wanted=changes)


def identity_change_refusal(*, request: IdentityChangeRequest, actor) -> PortalError | None:
    """Why `actor` may not confirm or reject `request` (None: they may). Shown before anyone tries."""
    if actor is None or not actor.is_active or not (
        is_pki_administrator(actor) or actor.groups.filter(name=APPROVERS).exists()
    ):
        return NotAllowed("Only PKI administrators and approvers decide identity changes.")
    if actor.pk == request.requested_by_id:
        return SeparationOfDuties(
            f"You asked for identity change #{request.pk}: another PKI administrator or an approver decides it."
        )
    if actor.pk == request.employee.user_id:
        return SeparationOfDuties(
            f"Identity change #{request.pk} changes your own identity: another PKI administrator or an approver "
            "decides it."
        )
    return None


def _decidable(request_id: int, actor, *, verb: str) -> IdentityChangeRequest:
    """The request, its employee locked first, then the request; refused unless pending and `actor` decides."""
    employee_id = IdentityChangeRequest.objects.filter(pk=request_id).values_list("employee_id", flat=True).first()
    if employee_id is None:
        raise NotFound(f"There is no identity change request #{request_id}.")
    employee = _locked_employee(Employee(pk=employee_id))
    request = IdentityChangeRequest.objects.select_for_update(of=("self",)).select_related("requested_by").get(
        pk=request_id
    )
    request.employee = employee
    if request.state != State.PENDING:
        raise InvalidState(f"Identity change #{request.pk} is {request.get_state_display()} already.")
    if verb == "confirm" and request.expires_at <= timezone.now():
        raise InvalidState(f"Identity change #{request.pk} expired undecided; ask for it again.")
    if refusal := identity_change_refusal(request=request, actor=actor):
        raise refusal
    return request


def _close(request, *, state: str, actor, action: AuditAction, comment: str = "", **details) -> None:
    request.state, request.decided_by, request.decided_at = state, actor, timezone.now()
    request.comment = comment
    request.save(update_fields=["state", "decided_by", "decided_at", "comment", "revoked_serials"])
    audit_record(
        action=action,
        actor=actor,
        obj=request.employee,
        details={
            "username": request.employee.user.get_username(),
            "request": request.pk,
            "source": request.source,
            "requested_by": _requester(request),
            "changes": request.changes,
            **({"comment": comment} if comment else {}),
            **details,
        },
    )


def identity_change_revocations(*, request: IdentityChangeRequest) -> list[str]:
    """The serials a confirmation would revoke now: valid certificates naming a changed mailbox or name."""
    named = [name for name in request.changes if name in NAMED_FIELDS]
    bound = identity_bindings(employee=request.employee, fields=named)
    return sorted({serial for serials in bound.values() for serial in serials})


@transaction.atomic
def identity_change_request_confirm(*, request_id: int, actor, comment: str = "") -> IdentityChangeRequest:
    """The second person confirms: the change is applied and the certificates naming the old values revoked.

    All in this transaction: the domain rule (PORTAL_MAIL_DOMAINS) and the mailbox's uniqueness
    are checked again, the record must still hold the old values, each certificate that binds a
    changed mailbox or name is revoked (affiliation_changed, the CRL reissued by the revocation
    service), the fields are written, and employee.changed plus employee.identity_change_confirmed
    record old → new.
    """
    request = _decidable(request_id, actor, verb="confirm")
    employee = request.employee
    stale = sorted(name for name, change in request.changes.items() if getattr(employee, name) != change["old"])
    if stale:
        raise InvalidState(
            f"The {', '.join(IDENTITY_LABELS[n] for n in stale)} of {employee.mail} changed since identity change "
            f"#{request.pk} was asked for: reject it and ask again."
        )
    _check_new_values(employee, request.changes)
    named = [name for name in request.changes if name in NAMED_FIELDS]
    serials = identity_change_revocations(request=request)
    for serial in serials:
        certificate_revoke(
            serial=serial,
            actor=actor,
            reason="affiliation_changed",
            comment=f"identity change #{request.pk}: {', '.join(IDENTITY_LABELS[n] for n in named)} changed",
        )
    for name, change in request.changes.items():
        setattr(employee, name, change["new"])
    employee.full_clean()
    employee.save(update_fields=sorted(request.changes))
    if "directory_dn" in request.changes:
        signals.employee_directory_dn_changed.send(sender=Employee, employee=employee)
    audit_record(
        action=AuditAction.EMPLOYEE_CHANGED,
        actor=actor,
        obj=employee,
        details={
            "username": employee.user.get_username(),
            "fields": sorted(request.changes),
            "changes": request.changes,
            "identity_change_request": request.pk,
            "requested_by": _requester(request),
        },
    )
    request.revoked_serials = serials
    _close(
        request, state=State.CONFIRMED, actor=actor, action=AuditAction.EMPLOYEE_IDENTITY_CHANGE_CONFIRMED,
        comment=(comment or "").strip(), revoked=serials,
    )
    return request


@transaction.atomic
def identity_change_request_reject(*, request_id: int, actor, comment: str) -> IdentityChangeRequest:
    """The second person rejects: nothing changes, the certificates stay valid."""
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError({"comment": "Say why the identity change is rejected."})
    request = _decidable(request_id, actor, verb="reject")
    _close(request, state=State.REJECTED, actor=actor, action=AuditAction.EMPLOYEE_IDENTITY_CHANGE_REJECTED, comment=comment)
    return request


@transaction.atomic
def identity_change_request_withdraw(*, request_id: int, actor) -> IdentityChangeRequest:
    """The requester takes their pending request back (a directory's request is rejected instead)."""
    employee_id = IdentityChangeRequest.objects.filter(pk=request_id).values_list("employee_id", flat=True).first()
    if employee_id is None:
        raise NotFound(f"There is no identity change request #{request_id}.")
    employee = _locked_employee(Employee(pk=employee_id))
    request = IdentityChangeRequest.objects.select_for_update(of=("self",)).get(pk=request_id)
    request.employee = employee
    if request.state != State.PENDING:
        raise InvalidState(f"Identity change #{request.pk} is {request.get_state_display()} already.")
    if actor is None or actor.pk != request.requested_by_id:
        raise NotAllowed(f"Only whoever asked for identity change #{request.pk} withdraws it; others reject it.")
    _close(request, state=State.WITHDRAWN, actor=actor, action=AuditAction.EMPLOYEE_IDENTITY_CHANGE_WITHDRAWN)
    return request


@transaction.atomic
def identity_change_requests_expire() -> int:
    """Close every pending request past its expiry (also done for one employee when a new one is asked for)."""
    employee_ids = set(
        IdentityChangeRequest.objects.filter(state=State.PENDING, expires_at__lte=timezone.now()).values_list(
            "employee_id", flat=True
        )
    )
    for employee_id in sorted(employee_ids):
        _expire_stale(_locked_employee(Employee(pk=employee_id)))
    return len(employee_ids)


@dataclass
class EmployeeChange:
    employee: Employee
    request: IdentityChangeRequest | None = None  # opened for the fields certificates bind
    applied: list[str] = field(default_factory=list)  # fields written now


@transaction.atomic
def employee_update_or_request(*, employee: Employee, actor, reason: str = "", **changes) -> EmployeeChange:
    """What the employee form saves: unbound fields in one audited step, bound ones as a change request.

    Refused as a whole (nothing written) when bound fields change without a reason or the request
    is refused (an open one exists, a mailbox at another domain, …).
    """
    locked = _locked_employee(employee)
    wanted = normalized_values(changes)
    differing = {name for name, value in wanted.items() if value != getattr(locked, name, value)}
    bound = identity_bindings(employee=locked, fields=differing)
    if bound and not (reason or "").strip():
        raise ValidationError(
            {
                "reason": "Valid certificates bind the "
                f"{', '.join(IDENTITY_LABELS[n] for n in bound)} ({', '.join(sorted({s for v in bound.values() for s in v}))}):"
                " say why it changes. The change then waits for a second person (another PKI administrator or an"
                " approver), and on confirmation the certificates naming the old value are revoked."
            }
        )
    request = None
    if bound:
        request = identity_change_request_create(
            employee=locked, actor=actor, reason=reason, **{name: wanted[name] for name in bound}
        )
    rest = {name: value for name, value in wanted.items() if name not in bound}
    applied = sorted(name for name in differing if name not in bound)
    updated = employee_update(employee=locked, actor=actor, **rest) if applied else _locked_employee(locked)
    return EmployeeChange(employee=updated, request=request, applied=applied)


@transaction.atomic
def identity_change_request_from_directory(
    *, employee: Employee, entry_dn: str, **changes
) -> tuple[IdentityChangeRequest | None, str]:
    """The directory log-in reports bound fields changed: open a request on its behalf (no requester).

    While a request with the same new values is open, that one is returned and nothing more is
    asked; while another one is open, nothing is (the note says why, for the log).
    """
    employee = _locked_employee(employee)
    wanted = {name: change["new"] for name, change in _changes(employee, changes).items()}
    _expire_stale(employee)
    open_request = IdentityChangeRequest.objects.filter(employee=employee, state=State.PENDING).first()
    if open_request is None:
        labels = ", ".join(IDENTITY_LABELS[n] for n in sorted(wanted))
        reason = f"The directory entry {entry_dn} reports a changed {labels} at a log-in."
        return _open(employee=employee, requested_by=None, source=DIRECTORY, reason=reason, wanted=wanted), ""
    if {name: change["new"] for name, change in open_request.changes.items()} == wanted:
        return open_request, ""
    return None, (
        f"identity change #{open_request.pk} (asked for by {_requester(open_request)}) is open: "
        "the directory's change was not requested"
    )
