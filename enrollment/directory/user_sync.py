"""What a directory log-in copies into the portal: the Employee row and the roles the directory decides.

Called by portal/ldap_auth.py for directory accounts only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.events import AuditAction
from audit.services import audit_record
from core.exceptions import PortalError

from .. import signals
from ..models import Employee, IdentityChangeRequest
from ..services.employees import identity_bindings, normalized_values
from ..services.identity_changes import DIRECTORY, NAMED_FIELDS, identity_change_request_from_directory

logger = logging.getLogger(__name__)


@dataclass
class DirectoryUserSync:
    employee: Employee | None = None
    granted: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    # Why the Employee row could not be written (another employee has the mailbox, …).
    employee_error: str = ""
    # Employee fields written now (audited, the directory as source), and the identity change
    # request the bound ones wait in (opened now or already open with the same values).
    employee_changed: list[str] = field(default_factory=list)
    identity_change: IdentityChangeRequest | None = None


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
    keeps its department. The Employee row is written audited (`_employee_from_directory`):
    a mailbox or name that valid certificates bind changes only through an identity change
    request a second person confirms; the log-in succeeds meanwhile.

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
        try:
            with transaction.atomic():
                _employee_from_directory(
                    result,
                    user=user,
                    entry_dn=entry_dn,
                    mail=mail,
                    given_name=given_name[: Employee._meta.get_field("given_name").max_length],
                    surname=surname[: Employee._meta.get_field("surname").max_length],
                )
        except (ValidationError, PortalError) as exc:
            result.employee = Employee.objects.filter(user=user).first()
            result.employee_error = " ".join(exc.messages) if isinstance(exc, ValidationError) else exc.message
        if result.employee_error:
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


def _employee_from_directory(result: DirectoryUserSync, *, user, entry_dn: str, mail: str, given_name: str, surname: str):
    """The entry's mailbox, names and DN into the Employee row of `user`, audited with the directory as source.

    A new record and changes no valid certificate binds are written now (no actor: the directory
    is the source of truth for them, and the DN is the entry that just authenticated the person).
    A changed mailbox or name that valid certificates bind is not applied: an identity change
    request is opened on the directory's behalf (services.identity_changes), which a PKI
    administrator or an approver confirms (revoking the old certificates) or rejects. The
    department is the portal's own field and stays.
    """
    source = {"source": DIRECTORY, "entry_dn": entry_dn}
    wanted = normalized_values({"mail": mail, "given_name": given_name, "surname": surname, "directory_dn": entry_dn})
    employee = Employee.objects.select_for_update(no_key=True).filter(user=user).first()
    if employee is None:
        employee = Employee(user=user, **wanted)
        employee.full_clean()
        employee.save()
        result.employee, result.employee_changed = employee, sorted(wanted)
        audit_record(
            action=AuditAction.EMPLOYEE_CREATED,
            obj=employee,
            details={"username": user.get_username(), "account": "directory", **wanted, **source},
        )
        return
    changes = {
        name: {"old": getattr(employee, name), "new": value}
        for name, value in sorted(wanted.items())
        if value != getattr(employee, name)
    }
    bound = identity_bindings(employee=employee, fields=[name for name in changes if name in NAMED_FIELDS])
    unbound = {name: change for name, change in changes.items() if name not in bound}
    if unbound:
        for name, change in unbound.items():
            setattr(employee, name, change["new"])
        employee.full_clean()
        employee.save(update_fields=sorted(unbound))
        if "directory_dn" in unbound:
            signals.employee_directory_dn_changed.send(sender=Employee, employee=employee)
        audit_record(
            action=AuditAction.EMPLOYEE_CHANGED,
            obj=employee,
            details={"username": user.get_username(), "fields": sorted(unbound), "changes": unbound, **source},
        )
    result.employee, result.employee_changed = employee, sorted(unbound)
    if bound:
        result.identity_change, note = identity_change_request_from_directory(
            employee=employee, entry_dn=entry_dn, **{name: changes[name]["new"] for name in bound}
        )
        if note:
            result.employee_error = note
        elif result.identity_change is not None:
            logger.info(
                "Directory log-in of %s: %s wait for identity change #%s (valid certificates bind them)",
                user.get_username(), ", ".join(sorted(bound)), result.identity_change.pk,
            )
        result.employee = Employee.objects.get(pk=employee.pk)
