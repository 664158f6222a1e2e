"""Log-ins and failed log-ins as audit events; connected in AuditConfig.ready(). Never a password."""

from __future__ import annotations

import hashlib

from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model, user_logged_in, user_login_failed

from .events import AuditAction
from .services import audit_record


def audit_login(sender, *, request, user, **kwargs) -> None:
    backend = getattr(user, "backend", "") or (request.session.get(BACKEND_SESSION_KEY, "") if request else "")
    audit_record(action=AuditAction.AUTH_LOGIN, actor=user, details={"backend": backend})


def audit_login_failed(sender, *, credentials, request=None, **kwargs) -> None:
    # Django masks the password in `credentials` already. A name that is no account may be a
    # password typed into the wrong box: it is recorded only as a hash, which still shows
    # repeated attempts with the same name.
    username = str(credentials.get("username", ""))[:150]
    if get_user_model().objects.filter(username=username).exists():
        details = {"username": username}
    else:
        details = {"unknown_account_sha256": hashlib.sha256(username.encode()).hexdigest()[:16]}
    audit_record(action=AuditAction.AUTH_LOGIN_FAILED, details=details)


def connect() -> None:
    user_logged_in.connect(audit_login, dispatch_uid="audit.audit_login")
    user_login_failed.connect(audit_login_failed, dispatch_uid="audit.audit_login_failed")
