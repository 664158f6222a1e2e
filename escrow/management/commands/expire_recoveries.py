from django.core.management.base import BaseCommand

from escrow.services.recovery_close import recoveries_expire


class Command(BaseCommand):
    help = "Mark approved key recoveries that no agent completed within PORTAL_RECOVERY_APPROVAL_DAYS expired."

    def handle(self, *args, **options):
        self.stdout.write(f"Marked {recoveries_expire()} recovery request(s) expired.")
