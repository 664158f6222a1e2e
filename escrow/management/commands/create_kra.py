import os
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.exceptions import PortalError
from enrollment import roles
from enrollment.pki.pkcs12 import MIN_PASSPHRASE_LENGTH, pkcs12_bundle
from escrow.services.agents import key_recovery_agent_create

from ._kra_cli import add_passphrase_arguments, portal_error_message, read_passphrase, user_by_username


class Command(BaseCommand):
    help = (
        "Create a key recovery agent: a key pair and a certificate from the issuing CA. Only the "
        "certificate is stored; the key is written, with the certificate, as a passphrase-protected "
        "PKCS#12 (mode 0600) to --out, which must not exist yet. New escrow goes to every active agent."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="the agent's name, also the certificate's common name")
        parser.add_argument("--out", required=True, help="where to write the agent's PKCS#12 (refuses to overwrite)")
        parser.add_argument("--user", help="the portal account of the agent (group Key recovery agents)")
        parser.add_argument("--key-type", choices=["rsa-3072", "rsa-4096"], default="rsa-3072")
        add_passphrase_arguments(parser)

    def handle(self, *args, **options):
        out = Path(options["out"])
        if out.exists():
            raise CommandError(f"{out} exists; choose another path (an agent's key file is never overwritten)")
        if not out.parent.is_dir():
            raise CommandError(f"the directory {out.parent} does not exist")
        user = user_by_username(options["user"]) if options.get("user") else None
        passphrase = read_passphrase(options, prompt="Passphrase for the agent's PKCS#12", confirm=True)
        if len(passphrase) < MIN_PASSPHRASE_LENGTH:
            raise CommandError(f"the passphrase must have at least {MIN_PASSPHRASE_LENGTH} characters")
        try:
            # The row and the file together: if the file cannot be written, no agent is created.
            with transaction.atomic():
                agent, key = key_recovery_agent_create(
                    name=options["name"], user=user, key_type=options["key_type"]
                )
                bundle = pkcs12_bundle(
                    key=key, certificate=agent.certificate, chain=[], friendly_name=agent.name,
                    passphrase=passphrase, fmt="modern",
                )
                self._write_new_private_file(out, bundle)
        except (PortalError, ValidationError) as exc:
            raise CommandError(portal_error_message(exc)) from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Created key recovery agent {agent.name} (certificate SHA-256 {agent.fingerprint_sha256}); "
            f"its PKCS#12 is {out}. Keep it offline; the portal does not have the key."
        )
        if user is not None and not user.groups.filter(name=roles.KEY_RECOVERY_AGENTS).exists():
            self.stderr.write(
                f"Note: {user.get_username()} is not in the group {roles.KEY_RECOVERY_AGENTS!r}; "
                "add them before they complete recoveries."
            )

    @staticmethod
    def _write_new_private_file(path: Path, data: bytes) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CommandError(f"{path} exists; choose another path") from None
        except OSError as exc:
            raise CommandError(f"cannot create {path}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise CommandError(f"cannot write {path}: {exc.strerror}") from None
