from django.core.management.base import BaseCommand

from enrollment.services.expiry import certificates_expire


class Command(BaseCommand):
    help = "Mark certificates past their notAfter expired and take them off the directory."

    def handle(self, *args, **options):
        self.stdout.write(f"Marked {certificates_expire()} certificate(s) expired.")
