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

from ..models import Employee
from ..services.employees import employee_upsert

logger = logging.getLogger(__name__)


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
