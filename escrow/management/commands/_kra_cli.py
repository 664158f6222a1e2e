"""Shared by the key recovery agent commands: reading a passphrase and an agent PKCS#12.

Never echoes, logs or stores what it reads.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

PASSPHRASE_ENV = "PORTAL_KRA_PASSPHRASE"


def add_passphrase_arguments(parser) -> None:
    parser.add_argument(
        "--passphrase-file",
        help=f"read the PKCS#12 passphrase from this file (else ${PASSPHRASE_ENV}, else a prompt)",
    )


def read_passphrase(options, *, prompt: str, confirm: bool = False) -> str:
    """From --passphrase-file, else $PORTAL_KRA_PASSPHRASE, else typed at a prompt (twice if `confirm`)."""
    if options.get("passphrase_file"):
        path = Path(options["passphrase_file"])
        try:
            value = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise CommandError(f"cannot read the passphrase file {path}: {exc.strerror}") from None
        if not value:
            raise CommandError(f"the passphrase file {path} is empty")
        return value
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value
    if not sys.stdin.isatty():
        raise CommandError(f"no passphrase: use --passphrase-file or ${PASSPHRASE_ENV}, or run it in a terminal")
    try:
        value = getpass.getpass(f"{prompt}: ")
        if confirm and getpass.getpass(f"{prompt} (again): ") != value:
            raise CommandError("the two passphrases differ")
    except (EOFError, KeyboardInterrupt):
        raise CommandError("no passphrase given") from None
    if not value:
        raise CommandError("no passphrase given")
    return value


def read_pkcs12_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None


def user_by_username(username: str):
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"there is no user {username!r}")
    return user


def portal_error_message(exc: Exception) -> str:
    """One readable line from a service's PortalError or ValidationError."""
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return "; ".join(f"{' '.join(messages)}" for messages in exc.message_dict.values())
        return " ".join(exc.messages)
    return getattr(exc, "message", str(exc))
