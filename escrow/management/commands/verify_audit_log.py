from django.core.management.base import BaseCommand, CommandError

from escrow.audit import audit_chain_breaks
from escrow.models import AuditEvent


class Command(BaseCommand):
    help = "Recompute the audit log's hash chain; exit non-zero naming the first event that does not match."

    def handle(self, *args, **options):
        events = AuditEvent.objects.order_by("id")
        broken = audit_chain_breaks(events.iterator(chunk_size=2000))
        if broken is not None:
            raise CommandError(
                f"audit log broken at event {broken.pk} ({broken.timestamp:%Y-%m-%d %H:%M:%S} {broken.action}): "
                "its hash or its link to the previous event does not match"
            )
        self.stdout.write(f"Audit log intact: {events.count()} events.")
