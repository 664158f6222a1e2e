"""Receivers connected in PortalConfig.ready(): django-auth-ldap's errors (one log line with the
reason), and account changes that void the account's API tokens."""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, post_save
from django_auth_ldap.backend import ldap_error

from enrollment.signals import employee_created

from .directory_links import link_new_account_to_its_entry
from .ldap_auth import PortalLDAPBackend, describe_ldap_error
from .services import api_tokens_revoke_stale

logger = logging.getLogger("portal.ldap_auth")


def log_directory_error(sender, *, context, exception, **kwargs) -> None:
    """django-auth-ldap swallows directory errors (a failed log-in); say what happened in one line."""
    config = PortalLDAPBackend.directory_config()
    logger.warning("Directory log-in failed (%s): %s", context, describe_ldap_error(exception, config))


def revoke_tokens_on_account_change(sender, *, instance, **kwargs) -> None:
    """A password change, offboarding or a change of staff flags voids the account's tokens."""
    api_tokens_revoke_stale(user=instance)


def revoke_tokens_on_role_change(sender, *, instance, action, reverse, pk_set, **kwargs) -> None:
    """A role granted or taken (from the user's side or the group's) voids the tokens made before."""
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    users = get_user_model().objects.filter(pk__in=pk_set or []) if reverse else [instance]
    for user in users:
        api_tokens_revoke_stale(user=user)


def connect() -> None:
    employee_created.connect(link_new_account_to_its_entry, dispatch_uid="portal.link_new_account_to_its_entry")
    ldap_error.connect(log_directory_error, sender=PortalLDAPBackend, dispatch_uid="portal.log_directory_error")
    user_model = get_user_model()
    post_save.connect(revoke_tokens_on_account_change, sender=user_model, dispatch_uid="portal.revoke_tokens_on_save")
    m2m_changed.connect(
        revoke_tokens_on_role_change, sender=user_model.groups.through, dispatch_uid="portal.revoke_tokens_on_roles"
    )
