from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.exceptions import PortalError
from enrollment.pki.crl import REVOCATION_REASON_NAMES
from enrollment.revocation.services import certificate_revoke


class Command(BaseCommand):
    help = "Revoke a certificate (final): reissues the CRL and removes it from the directory."

    def add_arguments(self, parser):
        parser.add_argument("serial", help="Serial number in hex (colons allowed).")
        parser.add_argument("--reason", required=True, choices=REVOCATION_REASON_NAMES)
        parser.add_argument("--comment", default="", help="Why, for the audit log.")

    def handle(self, *args, serial, reason, comment, **options):
        try:
            certificate = certificate_revoke(serial=serial, actor=None, reason=reason, comment=comment)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        except PortalError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Revoked {certificate.serial} ({certificate.mailbox}): {reason}.")
