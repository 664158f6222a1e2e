from django.core.management.base import BaseCommand, CommandError

from core.exceptions import PortalError
from enrollment import selectors
from enrollment.directory.ca_entry import ca_entry_publish
from enrollment.models import CertificateAuthority


class Command(BaseCommand):
    help = (
        "Publish the issuing CA certificate and its current CRL to the directory's CA entry "
        "(PORTAL_LDAP_CA_ENTRY_DN) now. Exits non-zero with one line when that fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("--ca", metavar="SLUG", help="Publish this CA instead of the issuing CA.")

    def handle(self, *args, **options):
        try:
            if options["ca"]:
                ca = CertificateAuthority.objects.filter(slug=options["ca"]).first()
                if ca is None:
                    raise CommandError(f"no CA with the slug {options['ca']!r}")
            else:
                ca = selectors.issuing_ca()
        except PortalError as exc:
            raise CommandError(exc.message) from None
        outcome = ca_entry_publish(ca=ca)
        if outcome.skipped:
            raise CommandError("no CA entry is configured: set PORTAL_LDAP_URI and PORTAL_LDAP_CA_ENTRY_DN")
        if not outcome.ok:
            raise CommandError(f"publishing CA {ca.slug} failed: {' '.join(outcome.error.split())}")
        self.stdout.write(f"CA {ca.slug}: {outcome}")
