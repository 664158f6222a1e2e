"""`manage.py enroll --csv FILE | --ldap-group DN --actor USERNAME`: bulk enrollment (enrollment/bulk.py)."""

import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.exceptions import PortalError
from enrollment.bulk import (
    REQUIRED_COLUMNS,
    BatchOutcome,
    BulkFileRefused,
    BulkPlan,
    bulk_file_read,
    bulk_report_write,
    bulk_rows_from_records,
)
from enrollment.bulk_batches import enrollment_batch_run
from enrollment.directory.groups import directory_group_members, group_member_records
from enrollment.models import EnrollmentBatch
from enrollment.pki.keys import KEY_TYPES
from enrollment.pki.profiles import CERTIFICATE_TYPES
from enrollment.roles import is_pki_administrator
from enrollment.services.issuance import issuance_in_background

SHOWN_FAILURES = 50  # on stderr; the report (--report) has every one


class Command(BaseCommand):
    help = (
        "Enroll employees from a CSV file (--csv) or the members of a directory group (--ldap-group DN, through "
        "the configured directory): for each person an employee record (employee_create) and a certificate "
        "request (certificate_request_create), both audited, filed by --actor, recorded as one enrollment batch. "
        f"CSV columns: {', '.join(REQUIRED_COLUMNS)}, optionally username (else the mailbox names the account), "
        "department, key_type and certificate_type; a header row; UTF-8 with or without BOM. A bad row is "
        "reported (line or DN, field, reason) and skipped, the others proceed; --atomic: all or nothing. Existing "
        "employees are never changed: one who never had a request gets one, the others are skipped as already "
        "enrolled, so a second run creates nothing. The requests wait for an approver, unless the organization's "
        "policy PORTAL_ENROLLMENT_AUTO_APPROVE approves a PKI administrator's batch at once (then workers issue, "
        "or this process without a broker). Exit status: 0 when something was (with --dry-run: would be) done, or "
        "no row failed; 1 when rows failed and nothing was done (with --atomic: when any row failed); 2 when the "
        "file is not a readable CSV of this form or the group cannot be read."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--csv", type=Path, metavar="FILE", help="The CSV file.")
        source.add_argument("--ldap-group", metavar="DN", help="A directory group: its members (nested too).")
        self.add_common_arguments(parser)

    def add_common_arguments(self, parser):
        parser.add_argument(
            "--actor", required=True, help="Username of the PKI administrator filing the requests (audited as theirs)."
        )
        parser.add_argument("--dry-run", action="store_true", help="Check every row and report; write nothing.")
        parser.add_argument(
            "--atomic",
            action="store_true",
            help="All or nothing: any bad row or refused row writes nothing (one long transaction: other writers of "
            "the portal wait for it).",
        )
        parser.add_argument("--report", type=Path, help="Write every failure to this CSV file (line, field, reason).")
        parser.add_argument(
            "--key-type", choices=list(KEY_TYPES), default="rsa-3072", help="For rows without key_type."
        )
        parser.add_argument(
            "--certificate-type",
            choices=list(CERTIFICATE_TYPES),
            default="sponsor-strict",
            help="For rows without certificate_type.",
        )
        parser.add_argument(
            "--progress",
            choices=["auto", "on", "off"],
            default="auto",
            help="The progress bar on stderr (auto: when stderr is a terminal).",
        )

    def handle(self, *args, csv: Path | None, ldap_group: str | None, report: Path | None, **options):
        started = time.monotonic()
        acting = self._actor(options["actor"])
        if csv is not None:
            rows, source, kind = self._csv_rows(csv), csv.name, EnrollmentBatch.Source.CSV
        else:
            rows, source, kind = (
                self._group_rows(ldap_group),
                ldap_group.strip(),
                EnrollmentBatch.Source.DIRECTORY_GROUP,
            )
        dry_run, atomic = options["dry_run"], options["atomic"]
        with self._bar(options["progress"]) as bar:

            def planned(plan: BulkPlan) -> None:
                bar.reset(total=plan.count("create") + plan.count("request"))

            try:
                outcome = enrollment_batch_run(
                    actor=acting,
                    rows=rows,
                    source=source,
                    source_kind=kind,
                    via=EnrollmentBatch.Via.COMMAND,
                    key_type=options["key_type"],
                    certificate_type=options["certificate_type"],
                    atomic=atomic,
                    dry_run=dry_run,
                    planned=planned,
                    progress=bar.update,
                )
            except PortalError as exc:
                raise CommandError(exc.message) from None
        self._failures_show(outcome.plan, verbosity=options["verbosity"])
        report_note = ""
        if report is not None:
            lines = bulk_report_write(outcome.plan, report)
            report_note = f" Report: {report} ({lines} failure lines)."
        seconds = time.monotonic() - started
        summary = self._summary(outcome, dry_run=dry_run, atomic=atomic, seconds=seconds)
        self.stdout.write(summary + report_note)
        self._exit_status(outcome.plan, dry_run=dry_run, atomic=atomic, written=outcome.written)

    def _csv_rows(self, path: Path):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.", returncode=2) from None
        try:
            return bulk_file_read(data, name=str(path))
        except BulkFileRefused as exc:
            raise CommandError(str(exc), returncode=2) from None

    def _group_rows(self, group_dn: str):
        try:
            members = directory_group_members(group_dn=group_dn)
        except PortalError as exc:
            raise CommandError(exc.message, returncode=2) from None
        if not members:
            raise CommandError(f"The group {group_dn} has no members to enroll.", returncode=2)
        return bulk_rows_from_records(group_member_records(members))

    def _actor(self, username: str):
        actor = get_user_model().objects.filter(username=username).first()
        if actor is None:
            raise CommandError(f"There is no user {username!r} (--actor).")
        if not (actor.is_active and is_pki_administrator(actor)):
            raise CommandError(f"{username} is not an active PKI administrator: only they enroll employees.")
        return actor

    def _bar(self, progress: str):
        stream = getattr(self.stderr, "_out", self.stderr)  # tqdm writes \r updates: not through OutputWrapper
        disable = {"auto": None, "on": False, "off": True}[progress]
        return tqdm(total=None, file=stream, disable=disable, unit="row", desc="enrolling", leave=True)

    def _failures_show(self, plan: BulkPlan, *, verbosity: int) -> None:
        bad = plan.bad_rows
        for row in bad[:SHOWN_FAILURES]:
            for name, reason in row.errors:
                self.stderr.write(f"{row.location}{', ' + name if name else ''}: {reason}")
        if len(bad) > SHOWN_FAILURES:
            self.stderr.write(f"… and {len(bad) - SHOWN_FAILURES} more failed rows (--report FILE lists them all).")
        if verbosity >= 2:
            for row in plan.rows:
                if not row.bad and row.note:
                    self.stderr.write(f"{row.location}: {row.action}: {row.note}")

    def _summary(self, outcome: BatchOutcome, *, dry_run: bool, atomic: bool, seconds: float) -> str:
        plan, written, batch = outcome.plan, outcome.written, outcome.batch
        created, requested = plan.count("create"), plan.count("request")
        skipped, failed = plan.count("skip"), len(plan.bad_rows)
        rows = len(plan.rows)
        if dry_run:
            return (
                f"Dry run, nothing written: {rows} rows; {created} employees would be enrolled, {requested} existing "
                f"employees would get a request, {skipped} skipped as already enrolled, {failed} bad."
            )
        if atomic and written == 0 and (created or requested or failed):
            return f"Nothing written (--atomic): {rows} rows, {failed} bad; fix them and run again (batch #{batch.pk})."
        rate = f", {written / seconds:.1f} rows/s" if written and seconds > 0 else ""
        return (
            f"{rows} rows: {created} employees enrolled, {requested} existing employees got a request, "
            f"{skipped} skipped as already enrolled, {failed} failed ({seconds:.1f} s{rate}). "
            f"{self._next_step(batch, written)} Batch #{batch.pk}."
        )

    @staticmethod
    def _next_step(batch: EnrollmentBatch, written: int) -> str:
        if not (batch.approved_by_policy and written):
            return "The requests wait for an approver."
        if issuance_in_background():
            return "Approved by policy: the workers issue them (the batch's progress is in the admin)."
        progress = batch.progress()
        return f"Approved by policy: {progress['issued']} issued, {progress['failed']} failed."

    def _exit_status(self, plan: BulkPlan, *, dry_run: bool, atomic: bool, written: int) -> None:
        failed = plan.bad_rows
        if not failed:
            return
        first = failed[0]
        name, reason = first.errors[0]
        where = f"{first.location}{', ' + name if name else ''}: {reason}"
        doable = plan.count("create") + plan.count("request")
        if atomic and (dry_run or written == 0):
            raise CommandError(f"{len(failed)} rows are bad, so --atomic writes nothing (first: {where})", returncode=1)
        if (doable if dry_run else written) == 0:
            if skipped := plan.count("skip"):
                raise CommandError(
                    f"Nothing new to enroll ({skipped} already enrolled), {len(failed)} rows failed (first: {where})",
                    returncode=1,
                )
            raise CommandError(f"No row could be enrolled: {len(failed)} rows failed (first: {where})", returncode=1)
