"""Trusted roles under dual control: one PKI administrator asks, a second one grants; taking a role away
needs one. Every step is an audit event.

The roles are the groups of enrollment.roles.TRUSTED_ROLES, "staff" (may use the admin) and
"superuser". Only a superuser asks for or grants "superuser". The User admin shows these
fields read-only, so this is the way they change; the directory sync changes the roles whose
group DN is configured (audited as auth.roles_changed), and `manage.py grant_role` is the
server operator's.
"""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record
from core.exceptions import InvalidState, NotAllowed, NotFound, SeparationOfDuties

from ..models import RoleGrantRequest
from ..roles import TRUSTED_ROLES, is_pki_administrator

STAFF = "staff"
SUPERUSER = "superuser"
GRANTABLE_ROLES = (*TRUSTED_ROLES, STAFF, SUPERUSER)


def _checked_role(role: str) -> str:
    if role not in GRANTABLE_ROLES:
        raise ValidationError({"role": f"Unknown role {role!r}; choose one of {', '.join(GRANTABLE_ROLES)}."})
    return role


def _may_manage(actor, role: str) -> bool:
    if actor is None:
        return True  # the server operator (manage.py)
    if not actor.is_active:
        return False
    if role == SUPERUSER:
        return actor.is_superuser
    return is_pki_administrator(actor)


def holds(user, role: str) -> bool:
    if role == STAFF:
        return user.is_staff
    if role == SUPERUSER:
        return user.is_superuser
    return user.groups.filter(name=role).exists()


def _apply(user, role: str, *, granted: bool) -> None:
    if role == SUPERUSER:
        user.is_superuser = granted
        user.is_staff = user.is_staff or granted
        user.save(update_fields=["is_superuser", "is_staff"])
    elif role == STAFF:
        user.is_staff = granted
        user.save(update_fields=["is_staff"])
    elif granted:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        if not user.is_staff:  # every trusted role works in the admin
            user.is_staff = True
            user.save(update_fields=["is_staff"])
    else:
        user.groups.remove(*Group.objects.filter(name=role))


@transaction.atomic
def role_grant_request(*, user, role: str, actor, reason: str) -> RoleGrantRequest:
    """The first person asks for `role` for `user`; nothing changes until a second person grants it."""
    role, reason = _checked_role(role), (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the role is granted."})
    if not _may_manage(actor, role):
        raise NotAllowed(f"Only {'superusers' if role == SUPERUSER else 'PKI administrators'} ask for the role {role}.")
    if actor is not None and actor.pk == user.pk:
        raise SeparationOfDuties("You cannot ask for a role for yourself.")
    if holds(user, role):
        raise InvalidState(f"{user.get_username()} holds the role {role} already.")
    if RoleGrantRequest.objects.filter(user=user, role=role, confirmed_at__isnull=True).exists():
        raise InvalidState(f"The role {role} for {user.get_username()} was asked for already; a second person grants it.")
    request = RoleGrantRequest.objects.create(user=user, role=role, reason=reason, requested_by=actor)
    audit_record(
        action=AuditAction.AUTH_ROLE_GRANT_REQUESTED,
        actor=actor,
        obj=user,
        details={"username": user.get_username(), "role": role, "reason": reason, "request": request.pk},
    )
    return request


@transaction.atomic
def role_grant_confirm(*, request_id: int, actor) -> RoleGrantRequest:
    """The second person grants the role: someone else than the one who asked and the one who gets it."""
    request = (
        RoleGrantRequest.objects.select_for_update(of=("self",))
        .select_related("user", "requested_by")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        raise NotFound(f"There is no role grant request #{request_id}.")
    if request.confirmed_at is not None:
        raise InvalidState(f"Role grant request #{request.pk} was granted already.")
    if not _may_manage(actor, request.role) or actor is None:
        raise NotAllowed(f"Only {'superusers' if request.role == SUPERUSER else 'PKI administrators'} grant the role {request.role}.")
    if actor.pk in (request.requested_by_id, request.user_id):
        raise SeparationOfDuties(
            f"You cannot grant role grant request #{request.pk}: you asked for it or would get it (a second person grants)."
        )
    _apply(request.user, request.role, granted=True)
    request.confirmed_by, request.confirmed_at = actor, timezone.now()
    request.save(update_fields=["confirmed_by", "confirmed_at"])
    audit_record(
        action=AuditAction.AUTH_ROLE_GRANTED,
        actor=actor,
        obj=request.user,
        details={
            "username": request.user.get_username(),
            "role": request.role,
            "requested_by": request.requested_by.get_username(),
            "request": request.pk,
        },
    )
    return request


@transaction.atomic
def role_grant_now(*, user, role: str, reason: str) -> None:
    """The server operator's grant (`manage.py grant_role`): the shell can do anything anyway; audited."""
    role = _checked_role(role)
    if holds(user, role):
        raise InvalidState(f"{user.get_username()} holds the role {role} already.")
    _apply(user, role, granted=True)
    audit_record(
        action=AuditAction.AUTH_ROLE_GRANTED,
        obj=user,
        details={"username": user.get_username(), "role": role, "reason": reason, "via": "manage.py grant_role"},
    )


@transaction.atomic
def role_revoke(*, user, role: str, actor, reason: str) -> None:
    """Taking a role away needs one PKI administrator (a superuser for "superuser")."""
    role, reason = _checked_role(role), (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the role is taken away."})
    if not _may_manage(actor, role):
        raise NotAllowed(f"Only {'superusers' if role == SUPERUSER else 'PKI administrators'} take the role {role} away.")
    if not holds(user, role):
        raise InvalidState(f"{user.get_username()} does not hold the role {role}.")
    _apply(user, role, granted=False)
    audit_record(
        action=AuditAction.AUTH_ROLE_REVOKED,
        actor=actor,
        obj=user,
        details={"username": user.get_username(), "role": role, "reason": reason},
    )
