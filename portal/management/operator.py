"""What the portal's own commands share: who runs them, and the account they name."""

from __future__ import annotations

import getpass

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError


def operator_name() -> str:
    """The operating-system login running the command, for the audit log ("" where none is known)."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return ""


def user_named(username: str):
    """The account `username`, or a one-line CommandError."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"There is no user {username!r}.")
    return user
