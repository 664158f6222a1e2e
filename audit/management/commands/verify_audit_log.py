from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.chain import anchors_read
from audit.keys import ChainKeyError, chain_keyring
from audit.models import AuditEvent
from audit.selectors import audit_chain_verification, audited_rows
from audit.sink import sink_read
from audit.verification import audit_chain_advance, audit_chain_verify_full

# At most this many problems in the one line of a failure; the count says how many more.
_PROBLEMS_SHOWN = 3


class Command(BaseCommand):
    help = (
        "Recompute the audit log's keyed hash chain (HMAC under the chain keys); exit non-zero with one line "
        "naming the first event that does not match, a forged or unsealed unkeyed event, a chain key id that "
        "is not configured, or an empty log while audited rows (CAs, certificates, ...) exist. "
        "With --anchors, also check that every anchor written by audit_checkpoint still holds, "
        "which catches deleted newest events; with --sink, that every event the external sink "
        "received is still in the log, unchanged. The verdict is stored for the admin's chain line "
        "(the last full re-verification); --new checks only the events after the stored verified point."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--new",
            action="store_true",
            help="only the events after the point verified before (what beat's audit.chain_verify does), for cron",
        )
        parser.add_argument(
            "--anchors",
            nargs="?",
            const=str(settings.PORTAL_AUDIT_ANCHOR_FILE),
            metavar="FILE",
            help=f"anchor file (default when given without FILE: {settings.PORTAL_AUDIT_ANCHOR_FILE})",
        )
        parser.add_argument(
            "--sink",
            metavar="FILE",
            help="the lines of the logger portal.audit.events as a collector stored them (syslog prefixes allowed)",
        )

    def _fail(self, problems: list[str]) -> None:
        shown = "; ".join(problems[:_PROBLEMS_SHOWN])
        more = f" (and {len(problems) - _PROBLEMS_SHOWN} more problems)" if len(problems) > _PROBLEMS_SHOWN else ""
        raise CommandError(shown + more)

    def handle(self, *args, **options):
        try:
            keyring = chain_keyring()
        except ChainKeyError as exc:
            raise CommandError(f"audit log cannot be verified: {exc}") from None
        if options["new"]:
            audit_chain_advance(limit=None)
            status = audit_chain_verification()
            if not status.intact:
                raise CommandError(f"audit log {status}")
            self.stdout.write(f"Audit log {status}.")
            return
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
        sink = []
        if options["sink"]:
            try:
                sink = sink_read(options["sink"])
            except OSError as exc:
                raise CommandError(f"cannot read the sink file {options['sink']}: {exc.strerror}") from None

        result = audit_chain_verify_full(anchors=anchors, keyring=keyring)  # stored for the admin's chain line
        problems = []
        if result.broken is not None:
            broken = result.broken
            where = f"event {broken.pk} ({broken.timestamp:%Y-%m-%d %H:%M:%S} {broken.action})"
            if result.unverifiable:
                problems.append(f"audit log cannot be verified from {where}: {result.reason}")
            else:
                problems.append(f"audit log broken at {where}: {result.reason}")
        if result.count == 0 and (rows := audited_rows()):
            counted = ", ".join(f"{count} {label}" for label, count in rows.items())
            problems.append(
                f"audit log is empty, but {counted} exist: their events were deleted (the table emptied)"
            )
        problems.extend(f"audit log truncated or rewritten: {problem}" for problem in result.problems)
        problems.extend(self._sink_problems(sink))
        if problems:
            self._fail(problems)

        keyed = (
            f"keyed from #{result.first_keyed_id} (key ids {', '.join(result.key_ids)})"
            if result.first_keyed_id is not None else "none keyed"
        )
        summary = f"Audit log intact: {result.count} events, {keyed}"
        if anchors:
            last = result.last_anchor
            summary += f"; {len(anchors)} anchors hold"
            if last is not None:
                summary += f", the last anchored head verified is event #{last.last_id} ({last.count} events, {last.timestamp})"
        else:
            summary += "; no anchors checked (--anchors: a deleted tail goes unnoticed without them)"
        if sink:
            summary += f"; {len(sink)} sink lines match"
        self.stdout.write(summary + ".")

    def _sink_problems(self, sink) -> list[str]:
        if not sink:
            return []
        problems = []
        wanted = {data["id"]: (number, data) for number, data in sink if data is not None}
        problems.extend(f"sink line {number}: not a sink line of this portal" for number, data in sink if data is None)
        ids, found = sorted(wanted), {}
        for start in range(0, len(ids), 500):  # within every database's limit of query parameters
            found.update(AuditEvent.objects.filter(pk__in=ids[start:start + 500]).values_list("id", "hash"))
        for event_id, (number, data) in sorted(wanted.items()):
            if event_id not in found:
                problems.append(f"sink line {number}: event #{event_id} ({data.get('action')}) is missing from the log")
            elif found[event_id] != data["hash"]:
                problems.append(f"sink line {number}: event #{event_id} has another hash than the sink received")
        return [f"audit log truncated or rewritten: {problem}" for problem in problems]
