from django.core.management.base import BaseCommand

from escrow.services.pickups import pickup_copies_purge_expired


class Command(BaseCommand):
    help = "Delete pickup copies whose download window has closed (escrow keeps the key for recovery)."

    def handle(self, *args, **options):
        self.stdout.write(f"Removed {pickup_copies_purge_expired()} expired key pickup(s), issued and recovered.")
