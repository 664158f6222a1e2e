from django.core.management.base import BaseCommand, CommandError

from core.exceptions import PortalError
from escrow.models import KeyRecoveryAgent
from escrow.services.agents import key_recovery_agent_deactivate

from ._kra_cli import portal_error_message


class Command(BaseCommand):
    help = (
        "Deactivate a key recovery agent (by id, name or certificate SHA-256 fingerprint): new escrow "
        "is no longer encrypted to it. Run rewrap_escrow afterwards to take it off existing records."
    )

    def add_arguments(self, parser):
        parser.add_argument("agent", help="the agent's id, name or SHA-256 fingerprint (hex)")

    def handle(self, *args, **options):
        key = options["agent"].strip()
        candidates = KeyRecoveryAgent.objects.filter(name=key) | KeyRecoveryAgent.objects.filter(
            fingerprint_sha256=key.lower().replace(":", "")
        )
        if key.isdigit():
            candidates = candidates | KeyRecoveryAgent.objects.filter(pk=int(key))
        agents = list(candidates.distinct())
        if not agents:
            raise CommandError(f"there is no key recovery agent {key!r}")
        if len(agents) > 1:
            raise CommandError(f"{key!r} names {len(agents)} agents; use the id or the fingerprint")
        try:
            agent = key_recovery_agent_deactivate(agent_id=agents[0].pk)
        except PortalError as exc:
            raise CommandError(portal_error_message(exc)) from None
        self.stdout.write(f"Deactivated key recovery agent {agent.name}. Run rewrap_escrow to re-encrypt existing escrow.")
