from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.exceptions import PortalError
from enrollment.services.employees import employee_offboard


class Command(BaseCommand):
    help = (
        "Offboard a leaver: revoke their certificates (cessationOfOperation), take them off the "
        "directory, withdraw pending requests and deactivate the account. Escrowed keys stay for recovery."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--accept-consequences",
            action="store_true",
            help="Offboard even one of the last approvers that key recovery needs (the command says what is lost).",
        )

    def handle(self, *args, username, accept_consequences=False, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"There is no user {username!r}.")
        try:
            revoked = employee_offboard(user=user, actor=None, acknowledge_consequences=accept_consequences)
        except PortalError as exc:
            raise CommandError(exc.message) from None
        serials = ", ".join(c.serial for c in revoked) or "none"
        self.stdout.write(f"Offboarded {username}: account deactivated; certificates revoked: {serials}.")
