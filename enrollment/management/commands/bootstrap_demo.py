import os
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.exceptions import PortalError, error_message
from enrollment.demo_accounts import DEMO_MAIL_DOMAIN, DEMO_USERS, demo_password_problems
from enrollment.models import CertificateAuthority, Employee
from enrollment.pki.pkcs12 import pkcs12_bundle
from enrollment.services.authorities import ca_create
from enrollment.services.employees import employee_upsert
from escrow.models import KeyRecoveryAgent
from escrow.services.agents import key_recovery_agent_create


def _tree(root: Path) -> set[Path]:
    return {root, *root.rglob("*")} if root.exists() else set()


@contextmanager
def files_removed_on_failure(*roots: Path):
    """On any failure, remove the files and directories under `roots` that appeared meanwhile.

    The database rolls back with the transaction; the CA key files and the agent's PKCS#12
    written inside it would otherwise stay behind, keys of a CA that no row names.
    """
    before = set().union(*(_tree(root) for root in roots))
    try:
        yield
    except BaseException:
        appeared = set().union(*(_tree(root) for root in roots)) - before
        for path in sorted(appeared, key=lambda p: len(p.parts), reverse=True):  # files before their directory
            if not (path.is_dir() and not path.is_symlink()):
                path.unlink(missing_ok=True)
            elif not any(path.iterdir()):
                path.rmdir()
        raise


class Command(BaseCommand):
    help = "Create a demo organization once: CA, key recovery agent, demo accounts. Keeps existing data."

    def handle(self, *args, **options):
        # The demo accounts (a superuser among them) get the password the README publishes.
        if settings.ENVIRONMENT != "development":
            raise CommandError(
                f"bootstrap_demo runs only with PORTAL_ENVIRONMENT=development (this is {settings.ENVIRONMENT}): "
                "its accounts have the published demo password; create real accounts with createsuperuser."
            )
        password = settings.PORTAL_DEMO_PASSWORD
        problems = demo_password_problems(password)
        if problems:  # before anything is created: nothing to undo
            raise CommandError(
                f"PORTAL_DEMO_PASSWORD is refused, nothing was created: {' '.join(problems)} "
                "Choose another (the default is correct-horse-battery)."
            )
        done: list[str] = []
        try:
            with files_removed_on_failure(Path(settings.PORTAL_CA_KEY_DIR), settings.DATA_DIR / "demo"):
                with transaction.atomic():
                    self._bootstrap(password, done)
        except (ValidationError, PortalError, ValueError, OSError) as exc:
            raise CommandError(f"The demo was not created, nothing was kept: {error_message(exc, separator='; ')}") from exc
        # Told only once committed: a line for an account that was rolled back would be a lie.
        for line in done:
            self.stdout.write(line)

    def _bootstrap(self, password: str, done: list[str]) -> None:
        if not CertificateAuthority.objects.filter(is_issuing=True).exists():
            ca = ca_create(common_name=f"{settings.PORTAL_ORGANIZATION_NAME} S/MIME CA", key_type="rsa-4096")
            done.append(f"Created demo CA {ca.common_name}")
        users = {}
        User = get_user_model()
        for username, given, surname, groups, superuser in DEMO_USERS:
            mail = f"{username}@{DEMO_MAIL_DOMAIN}"
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": given,
                    "last_name": surname,
                    "email": mail,
                    "is_staff": bool(groups) or superuser,
                    "is_superuser": superuser,
                },
            )
            if created:
                user.set_password(password)
                user.save()
                user.groups.set(Group.objects.filter(name__in=groups))
                done.append(f"Created demo account {username}")
            if not Employee.objects.filter(user=user).exists():
                employee_upsert(user=user, mail=mail, given_name=given, surname=surname)
            users[username] = user
        if not KeyRecoveryAgent.objects.filter(is_active=True).exists():
            agent, key = key_recovery_agent_create(name="Demo Key Recovery Agent", user=users["agent"])
            path = settings.DATA_DIR / "demo" / "kra-agent.p12"
            self._write_private(
                path,
                pkcs12_bundle(
                    key=key, certificate=agent.certificate, chain=[], friendly_name=agent.name,
                    passphrase=password, fmt="modern",
                ),
            )
            done.append(f"Created demo key recovery agent; its PKCS#12 is {path}")

    @staticmethod
    def _write_private(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
