"""Log-ins and failed log-ins as audit events; connected in AuditConfig.ready(). Never a password."""

from __future__ import annotations

import hashlib

from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model, user_logged_in, user_login_failed

from .events import AuditAction
from .services import audit_record


def audit_login(sender, *, request, user, **kwargs) -> None:
    backend = getattr(user, "backend", "") or (request.session.get(BACKEND_SESSION_KEY, "") if request else "")
    audit_record(action=AuditAction.AUTH_LOGIN, actor=user, details={"backend": backend})


# Set on the request by an authentication backend that refused an attempt before any password
# was checked because the account or the source is locked out (portal/lockout.py). Such refusals
# are no auth.login_failed events: the lockout is one event (auth.locked_out), so that a flood of
# attempts neither grows the chain nor queues on its lock.
LOGIN_REFUSED_LOCKED_OUT = "portal_login_refused_locked_out"


def unknown_account_sha256(username: str) -> str:
    return hashlib.sha256(username.encode()).hexdigest()[:16]


def login_failed_details(username: str) -> dict:
    """Who a failed log-in named: the account, or for a name that is no account only its hash.

    A name that is no account may be a password typed into the wrong box; the hash still
    shows repeated attempts with the same name."""
    username = str(username)[:150]
    if get_user_model().objects.filter(username=username).exists():
        return {"username": username}
    return {"unknown_account_sha256": unknown_account_sha256(username)}


def audit_login_failed(sender, *, credentials, request=None, **kwargs) -> None:
    # Django masks the password in `credentials` already.
    if request is not None and getattr(request, LOGIN_REFUSED_LOCKED_OUT, False):
        return
    details = login_failed_details(credentials.get("username", ""))
    audit_record(action=AuditAction.AUTH_LOGIN_FAILED, details=details)


def connect() -> None:
    user_logged_in.connect(audit_login, dispatch_uid="audit.audit_login")
    user_login_failed.connect(audit_login_failed, dispatch_uid="audit.audit_login_failed")
