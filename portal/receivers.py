"""Receivers of Django's log-in signals and django-auth-ldap's errors: audit events and log lines.

Connected in PortalConfig.ready(). A few lines each; never a password in what they record.
"""

from __future__ import annotations

import logging

from django.contrib.auth import BACKEND_SESSION_KEY, user_logged_in, user_login_failed
from django_auth_ldap.backend import ldap_error

logger = logging.getLogger("portal.ldap_auth")


def audit_login(sender, *, request, user, **kwargs) -> None:
    from escrow.audit import audit_record

    backend = getattr(user, "backend", "") or (request.session.get(BACKEND_SESSION_KEY, "") if request else "")
    audit_record(action="auth.login", actor=user, details={"backend": backend})


def audit_login_failed(sender, *, credentials, request=None, **kwargs) -> None:
    import hashlib

    from django.contrib.auth import get_user_model

    from escrow.audit import audit_record

    # Django masks the password in `credentials` already. A name that is no account may be a
    # password typed into the wrong box: it is recorded only as a hash, which still shows
    # repeated attempts with the same name.
    username = str(credentials.get("username", ""))[:150]
    if get_user_model().objects.filter(username=username).exists():
        details = {"username": username}
    else:
        details = {"unknown_account_sha256": hashlib.sha256(username.encode()).hexdigest()[:16]}
    audit_record(action="auth.login_failed", details=details)


def log_directory_error(sender, *, context, exception, **kwargs) -> None:
    """django-auth-ldap swallows directory errors (a failed log-in); say what happened in one line."""
    from .ldap_auth import PortalLDAPBackend, describe_ldap_error

    config = PortalLDAPBackend.directory_config()
    logger.warning("Directory log-in failed (%s): %s", context, describe_ldap_error(exception, config))


def connect() -> None:
    from .ldap_auth import PortalLDAPBackend

    user_logged_in.connect(audit_login, dispatch_uid="portal.audit_login")
    user_login_failed.connect(audit_login_failed, dispatch_uid="portal.audit_login_failed")
    ldap_error.connect(log_directory_error, sender=PortalLDAPBackend, dispatch_uid="portal.log_directory_error")
