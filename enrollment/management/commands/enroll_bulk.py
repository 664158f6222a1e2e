import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from enrollment.bulk import (
    REQUIRED_COLUMNS,
    BulkFileRefused,
    BulkPlan,
    bulk_apply,
    bulk_file_read,
    bulk_plan,
    bulk_report_write,
)
from enrollment.pki.keys import KEY_TYPES
from enrollment.pki.profiles import CERTIFICATE_TYPES
from enrollment.roles import is_pki_administrator

SHOWN_FAILURES = 50  # on stderr; the report (--report) has every one


class Command(BaseCommand):
    help = (
        "Enroll employees from a CSV file: for each row an employee record (employee_create) and a certificate "
        f"request (certificate_request_create), both audited, filed by --actor. Columns: {', '.join(REQUIRED_COLUMNS)}, "
        "optionally key_type and certificate_type; a header row; UTF-8 with or without BOM. A bad row is reported "
        "(line, field, reason) and skipped, the others proceed; --atomic: the whole file or nothing. Existing "
        "employees are never changed: one who never had a request gets one, the others are skipped as already "
        "enrolled, so a second run creates nothing. The requests wait for an approver: there is no --approve, "
        "because approval needs a second person (neither the employee nor the submitter). Exit status: 0 when "
        "something was (with --dry-run: would be) done, or no row failed; 1 when rows failed and nothing was "
        "done (with --atomic: when any row failed); 2 when the file is not a readable CSV of this form."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="The CSV file.")
        parser.add_argument(
            "--actor", required=True, help="Username of the PKI administrator filing the requests (audited as theirs)."
        )
        parser.add_argument("--dry-run", action="store_true", help="Check every row and report; write nothing.")
        parser.add_argument(
            "--atomic",
            action="store_true",
            help="All or nothing for the file: any bad row or refused row writes nothing (one long transaction: "
            "other writers of the portal wait for it).",
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

    def handle(self, *args, file: Path, actor: str, dry_run: bool, atomic: bool, report: Path | None, **options):
        started = time.monotonic()
        acting = self._actor(actor)
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.", returncode=2) from None
        try:
            rows = bulk_file_read(data, name=str(file))
        except BulkFileRefused as exc:
            raise CommandError(str(exc), returncode=2) from None
        plan = bulk_plan(rows, key_type=options["key_type"], certificate_type=options["certificate_type"])
        if dry_run:
            written = 0
        elif atomic and plan.bad_rows:
            written = 0
        else:
            with self._bar(plan, options["progress"]) as bar:
                written = bulk_apply(plan, actor=acting, atomic=atomic, progress=bar.update)
        self._failures_show(plan, verbosity=options["verbosity"])
        report_note = ""
        if report is not None:
            lines = bulk_report_write(plan, report)
            report_note = f" Report: {report} ({lines} failure lines)."
        seconds = time.monotonic() - started
        summary = self._summary(plan, dry_run=dry_run, atomic=atomic, written=written, seconds=seconds)
        self.stdout.write(summary + report_note)
        self._exit_status(plan, dry_run=dry_run, atomic=atomic, written=written)

    def _actor(self, username: str):
        actor = get_user_model().objects.filter(username=username).first()
        if actor is None:
            raise CommandError(f"There is no user {username!r} (--actor).")
        if not (actor.is_active and is_pki_administrator(actor)):
            raise CommandError(f"{username} is not an active PKI administrator: only they enroll employees.")
        return actor

    def _bar(self, plan: BulkPlan, progress: str):
        todo = plan.count("create") + plan.count("request")
        stream = getattr(self.stderr, "_out", self.stderr)  # tqdm writes \r updates: not through OutputWrapper
        disable = {"auto": None, "on": False, "off": True}[progress]
        return tqdm(total=todo, file=stream, disable=disable, unit="row", desc="enrolling", leave=True)

    def _failures_show(self, plan: BulkPlan, *, verbosity: int) -> None:
        bad = plan.bad_rows
        for row in bad[:SHOWN_FAILURES]:
            for name, reason in row.errors:
                self.stderr.write(f"line {row.line}{', ' + name if name else ''}: {reason}")
        if len(bad) > SHOWN_FAILURES:
            self.stderr.write(f"… and {len(bad) - SHOWN_FAILURES} more failed rows (--report FILE lists them all).")
        if verbosity >= 2:
            for row in plan.rows:
                if not row.bad and row.note:
                    self.stderr.write(f"line {row.line}: {row.action}: {row.note}")

    def _summary(self, plan: BulkPlan, *, dry_run: bool, atomic: bool, written: int, seconds: float) -> str:
        created, requested = plan.count("create"), plan.count("request")
        skipped, failed = plan.count("skip"), len(plan.bad_rows)
        rows = len(plan.rows)
        if dry_run:
            return (
                f"Dry run, nothing written: {rows} rows; {created} employees would be enrolled, {requested} existing "
                f"employees would get a request, {skipped} skipped as already enrolled, {failed} bad."
            )
        if atomic and written == 0 and (created or requested or failed):
            return f"Nothing written (--atomic): {rows} rows, {failed} bad; fix them and run again."
        rate = f", {written / seconds:.1f} rows/s" if written and seconds > 0 else ""
        return (
            f"{rows} rows: {created} employees enrolled, {requested} existing employees got a request, "
            f"{skipped} skipped as already enrolled, {failed} failed ({seconds:.1f} s{rate}). "
            "The requests wait for an approver."
        )

    def _exit_status(self, plan: BulkPlan, *, dry_run: bool, atomic: bool, written: int) -> None:
        failed = plan.bad_rows
        if not failed:
            return
        first = failed[0]
        name, reason = first.errors[0]
        where = f"line {first.line}{', ' + name if name else ''}: {reason}"
        doable = plan.count("create") + plan.count("request")
        if atomic and (dry_run or written == 0):
            raise CommandError(f"{len(failed)} rows are bad, so --atomic writes nothing (first: {where})", returncode=1)
        if (doable if dry_run else written) == 0:
            raise CommandError(f"No row could be enrolled: {len(failed)} rows failed (first: {where})", returncode=1)
