"""Local accounts changed by an administrator: what one person may do to another's account.

An account's password opens everything its owner may do, including downloading their waiting
PKCS#12 and asking for recovery of their own keys. So nobody sets the password of an account
that has an employee record (its owner sets it, or the directory holds it); for other accounts
(break-glass, service and demo accounts) setting one is an audited step. Account changes in the
admin (names, mail, username) are audited with old → new; deactivation is offboarding's, under
its own rules (enrollment/services/employees.py).
"""

from __future__ import annotations

from audit.events import AuditAction
from audit.services import audit_record
from core.exceptions import NotAllowed
from enrollment.models import Employee

# What the admin's account form may change; anything else goes through a service of its own.
ACCOUNT_FIELDS = ("username", "first_name", "last_name", "email")


def account_password_set_refusal(*, actor, user) -> str:
    """Why `actor` may not set `user`'s password, or "" (their own is theirs to change)."""
    if actor.pk == user.pk:
        return ""
    if Employee.objects.filter(user=user).exists():
        return (
            f"{user.get_username()} has an employee record: only its owner sets its password (or the directory "
            "holds it). Whoever sets another person's password can log in as them and take their keys."
        )
    return ""


def account_password_set_record(*, actor, user) -> None:
    """Audit a password `actor` set for `user` (the admin's password form, after the refusal check).
    Their API tokens and other sessions end with it: a token's credential stamp and a session's
    auth hash both cover the password hash."""
    if refusal := account_password_set_refusal(actor=actor, user=user):
        raise NotAllowed(refusal)
    audit_record(
        action=AuditAction.AUTH_PASSWORD_SET, actor=actor, obj=user, details={"username": user.get_username()}
    )


def account_change_record(*, actor, user, before: dict) -> None:
    """Audit what an administrator changed on an account (`before`: the ACCOUNT_FIELDS as they were)."""
    changes = {
        name: [before[name], getattr(user, name)] for name in ACCOUNT_FIELDS if before.get(name) != getattr(user, name)
    }
    if changes:
        audit_record(action=AuditAction.AUTH_ACCOUNT_CHANGED, actor=actor, obj=user, details={"changes": changes})


def account_create_record(*, actor, user) -> None:
    audit_record(
        action=AuditAction.AUTH_ACCOUNT_CREATED, actor=actor, obj=user, details={"username": user.get_username()}
    )
