from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.exceptions import PortalError
from escrow.services.agents import agent_credential_load
from escrow.services.escrow import escrow_records_rewrap

from ._kra_cli import add_passphrase_arguments, portal_error_message, read_passphrase, read_pkcs12_file


class Command(BaseCommand):
    help = (
        "Re-encrypt escrow records to the current set of active key recovery agents, opening each "
        "with one active agent's key (--kra-p12). Records that key cannot open are listed and make the "
        "command exit non-zero; the others are re-encrypted (one audit event escrow.rewrapped each)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--kra-p12", required=True, help="an active agent's PKCS#12 (certificate and key)")
        add_passphrase_arguments(parser)

    def handle(self, *args, **options):
        data = read_pkcs12_file(options["kra_p12"])
        passphrase = read_passphrase(options, prompt="Passphrase of the agent's PKCS#12")
        try:
            credential = agent_credential_load(pkcs12_data=data, passphrase=passphrase)
            result = escrow_records_rewrap(credential=credential)
        except (PortalError, ValidationError) as exc:
            raise CommandError(portal_error_message(exc)) from None
        for serial, problem in result.failed:
            self.stderr.write(f"not re-encrypted: certificate {serial}: {problem}")
        self.stdout.write(
            f"Re-encrypted {len(result.rewrapped)} escrow record(s) to the active agents; "
            f"{len(result.unchanged)} already were; {len(result.failed)} could not be opened with "
            f"{credential.agent.name}'s key."
        )
        if result.failed:
            raise CommandError(
                f"{len(result.failed)} escrow record(s) could not be opened with {credential.agent.name}'s key; "
                "run rewrap_escrow again with the key of an agent they are encrypted to"
            )
