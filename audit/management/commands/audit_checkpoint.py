from django.conf import settings
from django.core.management.base import BaseCommand

from audit.services import audit_checkpoint


class Command(BaseCommand):
    help = (
        "Append the audit log's current head (last id, hash, count, time), HMAC-signed, to the anchor file "
        "and the logger portal.audit.anchor; `verify_audit_log --anchors` then detects deleted newest events. "
        "Run it periodically."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--file", metavar="FILE", help=f"anchor file (default: {settings.PORTAL_AUDIT_ANCHOR_FILE})"
        )

    def handle(self, *args, **options):
        anchor = audit_checkpoint(path=options["file"])
        self.stdout.write(f"Anchored event #{anchor.last_id} ({anchor.count} events) at {anchor.timestamp}.")
