from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.exceptions import PortalError
from enrollment.services.role_grants import GRANTABLE_ROLES, role_grant_now


class Command(BaseCommand):
    help = (
        "The server operator grants a trusted role at once (bootstrap: the first PKI administrators). "
        "In the portal, roles are granted by two people (Enrollment → Role grant requests). Audited."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", choices=GRANTABLE_ROLES)
        parser.add_argument("--reason", required=True, help="Why; recorded in the audit log.")

    def handle(self, *args, username, role, reason, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"There is no user {username!r}.")
        try:
            role_grant_now(user=user, role=role, reason=reason)
        except PortalError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Granted {role} to {username}.")
