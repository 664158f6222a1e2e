import os
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from enrollment.demo_accounts import DEMO_USERS
from enrollment.models import CertificateAuthority, Employee
from enrollment.pki.pkcs12 import pkcs12_bundle
from enrollment.services.authorities import ca_create
from enrollment.services.employees import employee_upsert
from escrow.models import KeyRecoveryAgent
from escrow.services.agents import key_recovery_agent_create


class Command(BaseCommand):
    help = "Create a demo organization once: CA, key recovery agent, demo accounts. Keeps existing data."

    def handle(self, *args, **options):
        # The demo accounts (a superuser among them) get the password the README publishes.
        if settings.ENVIRONMENT != "development":
            raise CommandError(
                f"bootstrap_demo runs only with PORTAL_ENVIRONMENT=development (this is {settings.ENVIRONMENT}): "
                "its accounts have the published demo password; create real accounts with createsuperuser."
            )
        self._bootstrap()

    @transaction.atomic
    def _bootstrap(self):
        password = settings.PORTAL_DEMO_PASSWORD
        if not CertificateAuthority.objects.filter(is_issuing=True).exists():
            ca = ca_create(common_name=f"{settings.PORTAL_ORGANIZATION_NAME} S/MIME CA", key_type="rsa-4096")
            self.stdout.write(f"Created demo CA {ca.common_name}")
        users = {}
        User = get_user_model()
        for username, given, surname, groups, superuser in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": given,
                    "last_name": surname,
                    "email": f"{username}@example.org",
                    "is_staff": bool(groups) or superuser,
                    "is_superuser": superuser,
                },
            )
            if created:
                user.set_password(password)
                user.save()
                user.groups.set(Group.objects.filter(name__in=groups))
                self.stdout.write(f"Created demo account {username}")
            if not Employee.objects.filter(user=user).exists():
                employee_upsert(user=user, mail=f"{username}@example.org", given_name=given, surname=surname)
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
            self.stdout.write(f"Created demo key recovery agent; its PKCS#12 is {path}")

    @staticmethod
    def _write_private(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
