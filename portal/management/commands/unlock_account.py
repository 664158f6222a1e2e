"""End a log-in lockout at once: forget the failed log-ins of an account, of a source address, or both."""

from __future__ import annotations

import ipaddress

from django.core.management.base import BaseCommand, CommandError

from portal.lockout import lockout_key, lockout_unlock
from portal.management.operator import operator_name


class Command(BaseCommand):
    help = (
        "Unlock USERNAME after too many failed log-ins (its failures from every address are forgotten); "
        "with --source also (or only) the address ADDRESS. Audited as auth.unlocked."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", nargs="?", help="the account, as it logs in (any letter case)")
        parser.add_argument("--source", metavar="ADDRESS", help="a client IP address to unlock, e.g. 192.0.2.7")

    def handle(self, *args, username, source, **options):
        if not username and not source:
            raise CommandError("Name an account, an address (--source), or both.")
        if source:
            try:
                source = str(ipaddress.ip_address(source.strip()))
            except ValueError:
                raise CommandError(f"{source!r} is not an IP address.") from None
        failures = lockout_unlock(
            actor=None,
            account_key=lockout_key(username) if username else None,
            source=source,
            via="command",
            operator=operator_name(),
        )
        what = " and ".join(part for part in (username and f"account {username}", source and f"address {source}") if part)
        if failures:
            self.stdout.write(f"Unlocked {what}: {failures} failed log-in(s) forgotten.")
        else:
            self.stdout.write(f"Nothing to unlock: no failed log-ins are counted for {what}.")
