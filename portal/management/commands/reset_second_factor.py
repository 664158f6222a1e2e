"""Reset a user's second factor (a lost or replaced phone, no recovery codes left): they set it up anew at their next log-in."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.exceptions import error_message
from portal.management.operator import operator_name, user_named
from portal.second_factor import second_factor_reset


class Command(BaseCommand):
    help = (
        "Remove the authenticator app and recovery codes of USERNAME, after checking who they are (in person, "
        "or a call back on a known number). Their next log-in sets up a new second factor. "
        "Audited as auth.second_factor_reset with the operator and the reason."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--reason", required=True, help="why, e.g. the ticket number and how the identity was checked")

    def handle(self, *args, username, reason, **options):
        user = user_named(username)
        try:
            removed = second_factor_reset(user=user, operator=operator_name(), reason=reason)
        except ValidationError as exc:
            raise CommandError(error_message(exc)) from None
        self.stdout.write(
            f"Reset the second factor of {username} ({removed} device(s) removed): "
            "they set up a new one at their next log-in."
        )
