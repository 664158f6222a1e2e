"""Link a local account to a directory entry: from then on that entry logs in as it, with its directory password."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.exceptions import PortalError
from portal.ldap_auth import directory_account_link
from portal.management.operator import operator_name, user_named


class Command(BaseCommand):
    help = (
        "Let the directory entry DN log in as the local account USERNAME (with the entry's password; "
        "the local password stops working). Superusers cannot be linked. Audited as auth.directory_linked."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--dn", required=True, help="the entry's DN, e.g. uid=carol,ou=people,dc=example,dc=org")

    def handle(self, *args, username, dn, **options):
        user = user_named(username)
        try:
            account = directory_account_link(user=user, entry_dn=dn, linked_by=operator_name())
        except PortalError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Linked {username} to {account.entry_dn}: it logs in with that entry's directory password from now on."
        )
