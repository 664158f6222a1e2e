from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from enrollment.services.expiry import expiry_notices_send


class Command(BaseCommand):
    help = (
        "E-mail employees whose certificate expires within the thresholds (PORTAL_EXPIRY_NOTICE_DAYS, "
        "default 30, 7 and 1 days), once per certificate and threshold. Safe to run as often as you like."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days", type=int, action="append", default=None,
            help="A threshold in days; repeat for several. Overrides PORTAL_EXPIRY_NOTICE_DAYS.",
        )

    def handle(self, *args, days, **options):
        try:
            sent = expiry_notices_send(thresholds=days)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(f"Sent {sent} expiry notice(s).")
