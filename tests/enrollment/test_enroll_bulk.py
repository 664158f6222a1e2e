"""`manage.py enroll_bulk`: employees and requests from a CSV file, row by row through the audited services.

Bad rows are reported (line, field, reason) and skipped; a file that is not a CSV of the
expected form is one line and exit status 2; a dry run writes nothing; a second run creates
nothing; the failure report is safe to open in a spreadsheet.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.models import AuditEvent
from enrollment.bulk import spreadsheet_safe
from enrollment.models import CertificateRequest, Employee

HEADER = "username,mail,given_name,surname,department"


@pytest.fixture(autouse=True)
def mail_domains(settings):
    settings.PORTAL_MAIL_DOMAINS = ["example.org"]


@pytest.fixture
def pki_admin(make_user):
    from enrollment.roles import PKI_ADMINISTRATORS

    return make_user("pkiadmin", groups=[PKI_ADMINISTRATORS], given_name="Pat", surname="Administrator")


@pytest.fixture
def csv_file(tmp_path):
    def write(text: str | bytes, name: str = "people.csv") -> Path:
        path = tmp_path / name
        path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
        return path

    return write


def enroll(path: Path, *args: str, actor: str = "pkiadmin") -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("enroll_bulk", str(path), "--actor", actor, "--progress", "off", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def enroll_refused(path: Path, *args: str, actor: str = "pkiadmin") -> tuple[CommandError, str]:
    err = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(
            "enroll_bulk", str(path), "--actor", actor, "--progress", "off", *args, stdout=io.StringIO(), stderr=err
        )
    return caught.value, err.getvalue()


def counts() -> tuple[int, int, int]:
    """Employees, requests, and the audit events of what a batch wrote (each run audits its own start and end)."""
    events = AuditEvent.objects.exclude(action__in=["enrollment.batch_started", "enrollment.batch_finished"])
    return Employee.objects.count(), CertificateRequest.objects.count(), events.count()


GOOD = (
    f"{HEADER},key_type\n"
    "jdoe,Jane.Doe@example.org,Jane,Doe,Finance,ec-p256\n"
    "jmüller,j.mueller@example.org,Jürgen,Müller,R&D,\n"
    '"mlee","m.lee@example.org","Min","Lee","Sales, North",rsa-3072\n'
)


def test_a_good_file_enrolls_everyone_through_the_audited_services(pki_admin, csv_file):
    out, err = enroll(csv_file("\ufeff" + GOOD))  # with a byte order mark, as Excel writes "CSV UTF-8"

    assert "3 employees enrolled" in out and "0 failed" in out, out + err
    jane = Employee.objects.get(user__username="jdoe")
    assert (jane.mail, jane.given_name, jane.surname, jane.department) == (
        "jane.doe@example.org",
        "Jane",
        "Doe",
        "Finance",
    )
    assert Employee.objects.get(mail="m.lee@example.org").department == "Sales, North"
    requests = CertificateRequest.objects.order_by("pk")
    assert [(r.employee.user.username, r.key_type, r.state, r.submitted_by.username) for r in requests] == [
        ("jdoe", "ec-p256", "pending", "pkiadmin"),
        ("jmüller", "rsa-3072", "pending", "pkiadmin"),
        ("mlee", "rsa-3072", "pending", "pkiadmin"),
    ]
    created = AuditEvent.objects.filter(action="employee.created", actor_name="pkiadmin").count()
    filed = AuditEvent.objects.filter(action="request.created", actor_name="pkiadmin").count()
    assert (created, filed) == (3, 3)


def test_a_second_run_creates_nothing(pki_admin, csv_file):
    path = csv_file(GOOD)
    enroll(path)
    before = counts()

    out, _ = enroll(path)

    assert counts() == before
    assert "0 employees enrolled" in out and "3 skipped as already enrolled" in out


def test_an_existing_employee_without_a_request_gets_one_and_is_not_changed(pki_admin, alice, csv_file):
    path = csv_file(f"{HEADER}\nalice,alice@example.org,Alicia,Archer,Legal\n")

    out, err = enroll(path, "-v", "2")

    assert "1 existing employees got a request" in out
    assert "given_name, department differ from the file" in err
    alice.employee.refresh_from_db()
    assert (alice.employee.given_name, alice.employee.department) == ("Alice", "")
    assert CertificateRequest.objects.get().employee == alice.employee


def test_bad_rows_are_reported_by_line_and_field_and_the_others_proceed(pki_admin, alice, csv_file, tmp_path):
    path = csv_file(
        f"{HEADER},key_type\n"
        "good1,good1@example.org,Good,One,,\n"  # line 2
        "rlo,rlo@example.org,Eve,Doe\u202egnp.exe,,\n"  # 3: a bidi override in the surname
        "zw,zw@example.org,Ma\u200bllory,Doe,,\n"  # 4: a zero-width space
        "out,out@evil.example,Oscar,Out,,\n"  # 5: outside PORTAL_MAIL_DOMAINS
        "bad,not-an-address,Bad,Address,,\n"  # 6
        "nosn,nosn@example.org,No,,,\n"  # 7: sponsor-validated without a surname
        "kt,kt@example.org,Key,Type,,dsa-1024\n"  # 8
        "dup1,same@example.org,Dup,One,,\n"  # 9: one mailbox, two usernames
        "dup2,same@example.org,Dup,Two,,\n"  # 10
        "twice,twice@example.org,Twice,Listed,,\n"  # 11
        "twice,twice@example.org,Twice,Listed,,\n"  # 12: repeats line 11
        "taken,alice@example.org,Alice,Other,,\n"  # 13: another employee's mailbox
        "alice,alice.new@example.org,Alice,Archer,,\n"  # 14: enrolled under another mailbox
        "has space,space@example.org,Has,Space,,\n"  # 15: not a valid username
        "short,short@example.org,Short\n"  # 16: fields missing
        "good2,good2@example.org,Good,Two,,\n"  # 17
    )
    report = tmp_path / "failures.csv"

    out, err = enroll(path, "--report", str(report))

    assert "3 employees enrolled" in out and "13 failed" in out, out + err
    assert set(Employee.objects.values_list("user__username", flat=True)) == {
        "alice",
        "pkiadmin",
        "good1",
        "good2",
        "twice",
    }
    with report.open(encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.DictReader(handle))
    failures = {(int(line["line"]), line["field"]) for line in lines}
    assert failures == {
        (3, "surname"),
        (4, "given_name"),
        (5, "mail"),
        (6, "mail"),
        (7, "surname"),
        (8, "key_type"),
        (9, "mail"),
        (10, "mail"),
        (12, "username"),
        (12, "mail"),
        (13, "mail"),
        (14, "mail"),
        (15, "username"),
        (16, "row"),
    }
    reasons = {(int(line["line"]), line["field"]): line["reason"] for line in lines}
    assert "U+202E" in reasons[(3, "surname")] and "\u202e" not in reasons[(3, "surname")]
    assert "U+200B" in reasons[(4, "given_name")]
    assert "evil.example" in reasons[(5, "mail")]
    assert "lines 9, 10" in reasons[(9, "mail")]
    assert "repeats line 11" in reasons[(12, "mail")]
    assert "alice" in reasons[(13, "mail")]
    assert "identity change" in reasons[(14, "mail")]
    assert "line 3, surname:" in err and "line 16: has 3 fields" in err


def test_a_dry_run_reports_every_bad_row_and_writes_nothing(pki_admin, csv_file, tmp_path):
    path = csv_file(GOOD + "out,out@evil.example,Oscar,Out,,\n")
    before = counts()

    out, err = enroll(path, "--dry-run", "--report", str(tmp_path / "r.csv"))

    assert counts() == before
    assert "Dry run, nothing written" in out and "3 employees would be enrolled" in out and "1 bad" in out
    assert "line 5, mail: This CA does not certify addresses at evil.example." in err
    assert "line" in (tmp_path / "r.csv").read_text(encoding="utf-8-sig")


def test_atomic_writes_nothing_when_a_row_is_bad(pki_admin, csv_file):
    path = csv_file(GOOD + "out,out@evil.example,Oscar,Out,,\n")
    before = counts()

    error, _ = enroll_refused(path, "--atomic")

    assert error.returncode == 1 and "--atomic writes nothing" in str(error)
    assert counts() == before


@pytest.fixture
def request_refused_for_mlee(monkeypatch):
    """The request service refuses the third row of GOOD (mlee), after the row's employee was created."""
    from django.core.exceptions import ValidationError

    from enrollment import bulk

    real = bulk.certificate_request_create

    def refuse_the_third(**kwargs):
        if kwargs["employee"].user.username == "mlee":
            raise ValidationError({"key_type": "refused for the test"})
        return real(**kwargs)

    monkeypatch.setattr(bulk, "certificate_request_create", refuse_the_third)


def test_atomic_rolls_back_the_file_when_a_service_refuses_a_row(pki_admin, csv_file, request_refused_for_mlee):
    before = counts()

    error, err = enroll_refused(csv_file(GOOD), "--atomic")

    assert counts() == before
    assert "line 4, key_type: refused for the test" in err and error.returncode == 1


def test_a_row_a_service_refuses_takes_its_audit_events_with_it(pki_admin, csv_file, request_refused_for_mlee):
    """The rows' events are appended at the end of their transaction: a refused row's (its employee
    was created, then its request refused) are dropped with the row, the others' kept, the chain whole."""
    from audit.chain import audit_chain_breaks

    _, err = enroll(csv_file(GOOD))

    assert "line 4, key_type: refused for the test" in err
    assert not Employee.objects.filter(mail="m.lee@example.org").exists()
    created = AuditEvent.objects.filter(action="employee.created").values_list("object_id", flat=True)
    assert sorted(created) == sorted(str(pk) for pk in Employee.objects.filter(user__username__in=["jdoe", "jmüller"]).values_list("pk", flat=True))
    assert AuditEvent.objects.filter(action="request.created").count() == 2
    assert audit_chain_breaks(AuditEvent.objects.order_by("id").iterator()) is None


def test_a_transaction_of_rows_appends_its_audit_events_at_once(pki_admin, csv_file):
    """One append (one lock of the chain, one INSERT) per transaction of rows, not two per row."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        enroll(csv_file(GOOD))
    inserts = [query for query in queries.captured_queries if query["sql"].startswith('INSERT INTO "escrow_auditevent"')]
    assert len(inserts) == 3  # the batch's start, its three rows' six events, its end
    assert AuditEvent.objects.filter(action__in=["employee.created", "request.created"]).count() == 6


def test_nothing_done_is_a_non_zero_exit_with_one_line(pki_admin, csv_file):
    error, _ = enroll_refused(csv_file(f"{HEADER}\nout,out@evil.example,Oscar,Out,\n"))

    assert error.returncode == 1
    assert str(error) == (
        "No row could be enrolled: 1 rows failed (first: line 2, mail: This CA does not certify addresses at evil.example.)"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty"),
        (b"\xef\xbb\xbf\r\n\r\n", "is empty"),
        (f"{HEADER}\n".encode(), "has a header but no employees"),
        (b"username,mail,given_name,department\njdoe,j@example.org,J,F\n", "lacks surname"),
        (f"{HEADER},sn_typo\n".encode() + b"a,a@example.org,A,B,C,D\n", "unknown columns 'sn_typo'"),
        (b"jdoe,jane@example.org,Jane,Doe,Finance\n", "is not a header row"),
        (f"{HEADER}\njm,j@example.org,J\u00fcrgen,M,F\n".encode("latin-1"), "is not UTF-8 text (byte 0xfc on line 2)"),
        ("username;mail\n".encode("utf-16"), "is UTF-16 text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "is not a CSV file"),
        (b'{"employees": [{"username": "jdoe"}]}\n', "is not a header row"),
        (f'{HEADER}\n"jdoe,jane@example.org,Jane,Doe,Finance\n'.encode(), "is not a readable CSV file"),
    ],
    ids=[
        "empty",
        "bom-only",
        "header-only",
        "missing-column",
        "unknown-column",
        "no-header",
        "latin-1",
        "utf-16",
        "png",
        "json",
        "unterminated-quote",
    ],
)
def test_a_file_that_is_not_a_csv_of_this_form_is_one_line_and_exit_2(pki_admin, csv_file, content, expected):
    before = counts()

    error, _ = enroll_refused(csv_file(content))

    assert error.returncode == 2 and expected in str(error), str(error)
    assert "\n" not in str(error)
    assert counts() == before


def test_semicolons_and_header_aliases_are_read(pki_admin, csv_file):
    out, _ = enroll(csv_file("User Name;E-Mail;First Name;Last Name;Department\njdoe;jane@example.org;Jane;Doe;F\n"))

    assert "1 employees enrolled" in out


def test_only_an_active_pki_administrator_enrolls(make_user, approver, csv_file):
    path = csv_file(GOOD)

    error, _ = enroll_refused(path, actor="approver")
    assert "is not an active PKI administrator" in str(error)
    error, _ = enroll_refused(path, actor="nobody")
    assert "There is no user 'nobody'" in str(error)
    assert not CertificateRequest.objects.exists()


def test_the_report_defuses_spreadsheet_formulas(pki_admin, csv_file, tmp_path):
    hostile = [
        '=HYPERLINK("http://evil.example")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A9)",
        "\tTAB",
        "\rCR",
    ]
    lines = io.StringIO()
    writer = csv.writer(lines)
    writer.writerow(HEADER.split(","))
    writer.writerows([name, f"x{index}@evil.example", name, "Doe", ""] for index, name in enumerate(hostile))
    report = tmp_path / "report.csv"

    error, _ = enroll_refused(csv_file(lines.getvalue()), "--report", str(report))

    assert report.stat().st_mode & 0o777 == 0o600
    with report.open(encoding="utf-8-sig", newline="") as handle:
        cells = [cell for line in csv.reader(handle) for cell in line]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    for name in hostile:
        assert "'" + name in cells
    assert spreadsheet_safe("plain") == "plain" and spreadsheet_safe("=1") == "'=1"


def test_five_hundred_rows_in_a_bounded_time(pki_admin, csv_file, capsys, django_assert_max_num_queries):
    rows = "".join(
        f"user{n:04d},user{n:04d}@example.org,Given{n},Surname{n},Dept {n % 7},ec-p256\n" for n in range(500)
    )
    path = csv_file(f"{HEADER},key_type\n{rows}")

    started = time.monotonic()
    with django_assert_max_num_queries(10):  # the dry run's checks: a few queries per file, none per row
        enroll(path, "--dry-run")
    checked = time.monotonic() - started
    started = time.monotonic()
    out, _ = enroll(path)
    seconds = time.monotonic() - started

    assert "500 employees enrolled" in out
    assert CertificateRequest.objects.filter(state="pending").count() == 500
    with capsys.disabled():
        print(
            f"\nenroll_bulk, 500 rows on {connection.vendor}: dry run {checked:.2f} s, "
            f"enrollment {seconds:.1f} s ({500 / seconds:.0f} rows/s)"
        )
    assert seconds < 300  # a bound against a hang, not a timing target


def test_the_progress_bar_goes_to_stderr_and_the_summary_to_stdout(pki_admin, csv_file):
    out, err = io.StringIO(), io.StringIO()

    call_command("enroll_bulk", str(csv_file(GOOD)), "--actor", "pkiadmin", "--progress", "on", stdout=out, stderr=err)

    assert "enrolling" in err.getvalue() and "3/3" in err.getvalue()
    assert out.getvalue().count("\n") == 1 and "3 employees enrolled" in out.getvalue()
