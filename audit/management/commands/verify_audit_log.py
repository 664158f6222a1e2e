from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.chain import anchors_read, audit_verify
from audit.models import AuditEvent


class Command(BaseCommand):
    help = (
        "Recompute the audit log's hash chain; exit non-zero naming the first event that does not match. "
        "With --anchors, also check that every anchor written by audit_checkpoint still holds, "
        "which catches deleted newest events."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--anchors",
            nargs="?",
            const=str(settings.PORTAL_AUDIT_ANCHOR_FILE),
            metavar="FILE",
            help=f"anchor file (default when given without FILE: {settings.PORTAL_AUDIT_ANCHOR_FILE})",
        )

    def handle(self, *args, **options):
        anchors = []
        if options["anchors"]:
            key = settings.PORTAL_AUDIT_ANCHOR_KEY
            if not key:
                raise CommandError("PORTAL_AUDIT_ANCHOR_KEY is not set: anchors cannot be checked")
            try:
                anchors = anchors_read(options["anchors"], key=key)
            except OSError as exc:
                raise CommandError(f"cannot read the anchor file {options['anchors']}: {exc.strerror}") from None
            if not anchors:
                raise CommandError(f"the anchor file {options['anchors']} holds no anchors")
        result = audit_verify(AuditEvent.objects.order_by("id").iterator(chunk_size=2000), anchors=anchors)
        problems = []
        if result.broken is not None:
            broken = result.broken
            problems.append(
                f"audit log broken at event {broken.pk} ({broken.timestamp:%Y-%m-%d %H:%M:%S} {broken.action}): "
                "its hash or its link to the previous event does not match"
            )
        problems.extend(f"audit log truncated or rewritten: {problem}" for problem in result.problems)
        if problems:
            raise CommandError("\n".join(problems))
        suffix = f"; {len(anchors)} anchors hold" if anchors else ""
        self.stdout.write(f"Audit log intact: {result.count} events{suffix}.")
