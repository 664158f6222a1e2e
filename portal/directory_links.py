"""A new employee's account linked to their directory entry, so that they log in with it.

Had the person logged in before anyone created their record, django-auth-ldap would have made
their account a directory account. An administrator who creates the record first (picked from
the directory, or by bulk enrollment) makes a password-less local account instead, which the
directory log-in refuses ("a local account, not a directory account"). So when employee_create
made the account itself and the record names a DN, the account is linked to that entry
(directory_account_link: audited, never a superuser), but only if the entry is there under the
log-in base and carries the record's mailbox: the DN alone, typed by an administrator, is not
trusted to say whose entry it is.
"""

from __future__ import annotations

import logging
from functools import partial

from django.db import transaction

from core.exceptions import PortalError
from enrollment.directory.client import DirectoryClient, DirectoryError, EntryLocator
from enrollment.directory.config import DirectoryConfig

from .ldap_auth import directory_account_link

logger = logging.getLogger("portal.ldap_auth")


def directory_account_link_new(*, employee, linked_by: str) -> bool:
    """Link `employee`'s fresh account to its DN when the entry confirms the mailbox; True if linked."""
    config = DirectoryConfig.from_settings()
    user = employee.user
    if config is None or not employee.directory_dn or user.has_usable_password():
        return False
    try:
        with DirectoryClient(config) as client:
            entry = client.find_entry(EntryLocator(mail=employee.mail, dn=employee.directory_dn), attributes=["mail"])
    except (DirectoryError, PortalError) as exc:
        logger.warning("Not linked %s to %s: %s", user.get_username(), employee.directory_dn, exc)
        return False
    mailboxes = {value.decode("utf-8", "replace").strip().lower() for value in entry.get("mail")}
    if employee.mail.lower() not in mailboxes:
        logger.warning("Not linked %s to %s: the entry does not carry %s", user.get_username(), entry.dn, employee.mail)
        return False
    try:
        directory_account_link(user=user, entry_dn=entry.dn, linked_by=linked_by)
    except PortalError as exc:  # a superuser, outside the log-in base, another account's entry
        logger.warning("Not linked %s to %s: %s", user.get_username(), entry.dn, exc.message)
        return False
    return True


def link_new_account_to_its_entry(sender, *, employee, account_created: bool, actor, **kwargs) -> None:
    """enrollment.signals.employee_created: after commit, outside the creating transaction."""
    if not account_created or not employee.directory_dn:
        return
    by = f"employee_create by {actor.get_username()}" if actor is not None else "employee_create"
    transaction.on_commit(partial(directory_account_link_new, employee=employee, linked_by=by))
