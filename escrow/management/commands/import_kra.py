from pathlib import Path

from cryptography import x509
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.exceptions import PortalError
from escrow.services.agents import key_recovery_agent_import

from ._kra_cli import portal_error_message, user_by_username


class Command(BaseCommand):
    help = (
        "Register an existing key recovery agent certificate (PEM or DER). It must be usable for CMS "
        "key transport: RSA of at least 2048 bits, keyUsage keyEncipherment, not a CA, currently valid."
    )

    def add_arguments(self, parser):
        parser.add_argument("certificate", help="the agent's certificate, PEM or DER")
        parser.add_argument("--name", default="", help="the agent's name (default: the certificate's common name)")
        parser.add_argument("--user", help="the portal account of the agent")

    def handle(self, *args, **options):
        path = Path(options["certificate"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        try:
            certificate = (
                x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
            )
        except ValueError:
            raise CommandError(f"{path} is not an X.509 certificate in PEM or DER") from None
        user = user_by_username(options["user"]) if options.get("user") else None
        try:
            agent = key_recovery_agent_import(certificate=certificate, name=options["name"], user=user)
        except (PortalError, ValidationError) as exc:
            raise CommandError(portal_error_message(exc)) from None
        self.stdout.write(
            f"Registered key recovery agent {agent.name} (certificate SHA-256 {agent.fingerprint_sha256}); "
            "new escrow is encrypted to it too. Run rewrap_escrow to add it to existing escrow records."
        )
