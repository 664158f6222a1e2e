from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.exceptions import PortalError
from escrow.services.agents import agent_credential_load
from escrow.services.recovery import recovery_request_complete

from ._kra_cli import (
    add_passphrase_arguments,
    portal_error_message,
    read_passphrase,
    read_pkcs12_file,
    user_by_username,
)


class Command(BaseCommand):
    help = (
        "Complete an approved key recovery request offline with a key recovery agent's PKCS#12. The "
        "recovered keys become a pickup for the request's recipient; the agent's key is not stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("request_id", type=int, help="the approved recovery request")
        parser.add_argument("--kra-p12", required=True, help="the agent's PKCS#12 (certificate and key)")
        parser.add_argument(
            "--user", help="the agent's portal account (default: the account the agent certificate is registered to)"
        )
        add_passphrase_arguments(parser)

    def handle(self, *args, **options):
        data = read_pkcs12_file(options["kra_p12"])
        passphrase = read_passphrase(options, prompt="Passphrase of the agent's PKCS#12")
        try:
            if options.get("user"):
                user = user_by_username(options["user"])
            else:
                credential = agent_credential_load(pkcs12_data=data, passphrase=passphrase)
                if credential.agent.user is None:
                    raise CommandError(
                        f"the agent {credential.agent.name} has no portal account; name the agent's account with --user"
                    )
                user = credential.agent.user
                del credential
            request = recovery_request_complete(
                request_id=options["request_id"], agent=user, agent_pkcs12=data, passphrase=passphrase
            )
        except (PortalError, ValidationError) as exc:
            raise CommandError(portal_error_message(exc)) from None
        count = request.pickups.count()
        self.stdout.write(
            f"Recovery request #{request.pk} completed: {count} key(s) wait for {request.recipient.get_username()} "
            f"on the self-service page until {request.pickups.first().expires_at:%Y-%m-%d}."
        )
