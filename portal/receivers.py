"""Receivers of django-auth-ldap's errors: one log line with the reason. Connected in PortalConfig.ready()."""

from __future__ import annotations

import logging

from django_auth_ldap.backend import ldap_error

from .ldap_auth import PortalLDAPBackend, describe_ldap_error

logger = logging.getLogger("portal.ldap_auth")


def log_directory_error(sender, *, context, exception, **kwargs) -> None:
    """django-auth-ldap swallows directory errors (a failed log-in); say what happened in one line."""
    config = PortalLDAPBackend.directory_config()
    logger.warning("Directory log-in failed (%s): %s", context, describe_ldap_error(exception, config))


def connect() -> None:
    ldap_error.connect(log_directory_error, sender=PortalLDAPBackend, dispatch_uid="portal.log_directory_error")
