from django.core.management.base import BaseCommand, CommandError

from core.exceptions import PortalError
from enrollment.models import CertificateAuthority
from enrollment.pki.backends import KeyBackendError
from enrollment.revocation.services import crl_generate, crls_refresh


class Command(BaseCommand):
    help = "Reissue the CRLs that are due (run hourly or daily); --force reissues every CA's CRL now."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true")

    def handle(self, *args, force, **options):
        try:
            if force:
                cas = list(CertificateAuthority.objects.with_key().order_by("pk"))
                for ca in cas:
                    crl_generate(ca=ca)
            else:
                cas = crls_refresh()
        except (PortalError, KeyBackendError) as exc:
            raise CommandError(getattr(exc, "message", str(exc))) from None
        for ca in cas:
            ca.refresh_from_db()
            self.stdout.write(f"{ca.slug}: CRL #{ca.crl_number}, next update {ca.crl_next_update:%Y-%m-%d %H:%M} UTC")
        if not cas:
            self.stdout.write("No CRL was due.")
