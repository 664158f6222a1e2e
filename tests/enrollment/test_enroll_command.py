"""`manage.py enroll --csv FILE`: a batch per run, the approval policy, and `enroll_bulk` as its alias.

The CSV rules themselves (per-row errors, the report, not-a-CSV files) are tested through
`enroll_bulk` in test_enroll_bulk.py; here: the columns the issue names (mail, given name,
surname), the batch record and its progress, PORTAL_ENROLLMENT_AUTO_APPROVE off and on (in
process without a broker, queued for the workers with one), and the exit statuses of `enroll`.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from enrollment.models import CertificateRequest, Employee, EnrollmentBatch
from enrollment.notifications.models import OutboxMail

MINIMAL = (
    "mail,given_name,surname\n"
    "Jane.Doe@example.org,Jane,Doe\n"
    "j.mueller@example.org,Jürgen,Müller\n"
    "m.lee@example.org,Min,Lee\n"
)


@pytest.fixture(autouse=True)
def mail_domains(settings):
    settings.PORTAL_MAIL_DOMAINS = ["example.org"]
    settings.PORTAL_ENROLLMENT_AUTO_APPROVE = False


@pytest.fixture
def csv_file(tmp_path):
    def write(text: str | bytes, name: str = "people.csv") -> Path:
        path = tmp_path / name
        path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
        return path

    return write


def enroll(*args: str, actor: str = "pkiadmin") -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("enroll", *args, "--actor", actor, "--progress", "off", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def enroll_refused(*args: str, command: str = "enroll", actor: str = "pkiadmin") -> CommandError:
    with pytest.raises(CommandError) as caught:
        call_command(command, *args, "--actor", actor, "--progress", "off", stdout=io.StringIO(), stderr=io.StringIO())
    return caught.value


def counts() -> tuple[int, int, int]:
    """Employees, requests, and the audit events of what a batch wrote (each run audits its own start and end)."""
    events = AuditEvent.objects.exclude(action__in=["enrollment.batch_started", "enrollment.batch_finished"])
    return Employee.objects.count(), CertificateRequest.objects.count(), events.count()


def test_the_issues_columns_enroll_everyone_as_one_batch_waiting_for_approvers(pki_admin, csv_file):
    out, err = enroll("--csv", str(csv_file(MINIMAL, name="hr-export.csv")))

    assert "3 employees enrolled" in out and "0 failed" in out and "wait for an approver" in out, out + err
    batch = EnrollmentBatch.objects.get()
    assert f"Batch #{batch.pk}." in out
    assert (batch.started_by, batch.source, batch.source_kind, batch.via) == (
        pki_admin,
        "hr-export.csv",
        "csv",
        "command",
    )
    assert (batch.rows, batch.created, batch.employees_created, batch.skipped, batch.failed) == (3, 3, 3, 0, 0)
    assert batch.finished_at is not None and not batch.approved_by_policy and batch.failures == []
    # Without a username column the account is named by the mailbox.
    jane = Employee.objects.get(mail="jane.doe@example.org")
    assert jane.user.username == "jane.doe@example.org" and jane.department == ""
    requests = CertificateRequest.objects.filter(batch=batch)
    assert requests.count() == 3 and set(requests.values_list("state", flat=True)) == {"pending"}
    assert EnrollmentBatch.objects.with_progress().get().progress() == {
        "pending": 3,
        "approved": 0,
        "rejected": 0,
        "issued": 0,
        "failed": 0,
    }
    created = AuditEvent.objects.filter(action="request.created", actor_name="pkiadmin")
    assert [event.details["batch"] for event in created] == [batch.pk] * 3
    assert not AuditEvent.objects.filter(action="request.auto_approved").exists()


def test_a_second_run_creates_nothing_but_its_batch_record(pki_admin, csv_file):
    path = csv_file(MINIMAL)
    enroll("--csv", str(path))
    before = counts()

    out, _ = enroll("--csv", str(path))

    assert counts() == before
    assert "0 employees enrolled" in out and "3 skipped as already enrolled" in out
    second = EnrollmentBatch.objects.order_by("pk").last()
    assert (second.created, second.skipped, second.failed) == (0, 3, 0)
    assert second.progress()["pending"] == 0  # the requests stay with the batch that filed them
    started, finished = AuditEvent.objects.filter(
        object_type="enrollment.enrollmentbatch", object_id=str(second.pk)
    ).order_by("id")
    assert (started.action, started.actor_id, started.details["rows"]) == ("enrollment.batch_started", pki_admin.pk, 3)
    assert (finished.action, finished.details) == ("enrollment.batch_finished", {"created": 0, "skipped": 3, "failed": 0})


def test_bad_rows_are_in_the_batch_with_their_line_and_the_others_go_through(pki_admin, csv_file):
    path = csv_file(
        "mail,given_name,surname,key_type\n"
        "good@example.org,Good,Person,\n"  # 2
        "out@evil.example,Oscar,Out,\n"  # 3: outside PORTAL_MAIL_DOMAINS
        "nosurname@example.org,No,,\n"  # 4: missing surname
        "not-an-address,Bad,Address,\n"  # 5: malformed
        "twice@example.org,Twice,Listed,\n"  # 6
        "twice@example.org,Twice,Listed,\n"  # 7: duplicate in the file
        "kt@example.org,Key,Type,dsa-1024\n"  # 8: unknown key type
    )

    out, err = enroll("--csv", str(path))

    assert "2 employees enrolled" in out and "5 failed" in out, out + err
    batch = EnrollmentBatch.objects.get()
    assert {(item["where"], item["field"]) for item in batch.failures} == {
        ("3", "mail"),
        ("4", "surname"),
        ("5", "mail"),
        ("7", "username"),
        ("7", "mail"),
        ("8", "key_type"),
    }
    assert (batch.created, batch.failed) == (2, 5)
    assert "line 3, mail: This CA does not certify addresses at evil.example." in err


@pytest.mark.django_db(transaction=True)  # real commits: each row is issued right after its own
def test_policy_on_without_a_broker_approves_and_issues_in_process(pki, pki_admin, csv_file, settings):
    settings.PORTAL_ENROLLMENT_AUTO_APPROVE = True
    out, err = enroll("--csv", str(csv_file(MINIMAL)), "--key-type", "ec-p256")

    batch = EnrollmentBatch.objects.get()
    assert batch.approved_by_policy
    assert "Approved by policy: 3 issued, 0 failed." in out, out + err
    requests = list(CertificateRequest.objects.filter(batch=batch))
    assert {request.state for request in requests} == {"issued"}
    assert all(request.decided_by is None and "by policy" in request.reason for request in requests)
    events = AuditEvent.objects.filter(action="request.auto_approved")
    assert events.count() == 3
    assert {(e.details["policy"], e.details["batch"], e.details["started_by"]) for e in events} == {
        ("PORTAL_ENROLLMENT_AUTO_APPROVE", batch.pk, "pkiadmin")
    }
    assert AuditEvent.objects.filter(action="certificate.issued").count() == 3
    # Approved at once: no approver is asked to look at them.
    assert not OutboxMail.objects.filter(kind="request.pending").exists()


def test_policy_on_with_a_broker_queues_issuance_for_the_workers(
    pki, pki_admin, csv_file, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from enrollment import tasks

    queued = []
    monkeypatch.setattr(tasks, "_enqueue", lambda task, **kwargs: queued.append((task.name, kwargs["request_id"])))
    settings.PORTAL_ENROLLMENT_AUTO_APPROVE = True
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/7"

    with django_capture_on_commit_callbacks(execute=True):
        out, _ = enroll("--csv", str(csv_file(MINIMAL)))

    assert "the workers issue them" in out
    requests = CertificateRequest.objects.filter(batch__approved_by_policy=True)
    assert set(requests.values_list("state", flat=True)) == {"approved"}
    assert sorted(queued) == sorted(
        ("enrollment.certificate_request_issue", pk) for pk in requests.values_list("pk", flat=True)
    )


def test_policy_on_does_not_approve_a_dry_run_and_off_waits(pki_admin, csv_file, settings):
    settings.PORTAL_ENROLLMENT_AUTO_APPROVE = True
    out, _ = enroll("--csv", str(csv_file(MINIMAL)), "--dry-run")
    assert "Dry run, nothing written" in out and not EnrollmentBatch.objects.exists()

    settings.PORTAL_ENROLLMENT_AUTO_APPROVE = False
    enroll("--csv", str(csv_file(MINIMAL)))
    assert set(CertificateRequest.objects.values_list("state", flat=True)) == {"pending"}


def test_atomic_with_a_bad_row_records_the_batch_and_writes_nothing(pki_admin, csv_file):
    before = counts()

    error = enroll_refused("--csv", str(csv_file(MINIMAL + "out@evil.example,Oscar,Out\n")), "--atomic")

    assert error.returncode == 1 and counts() == before
    batch = EnrollmentBatch.objects.get()
    assert (batch.created, batch.failed, batch.failures[0]["where"]) == (0, 1, "5")


@pytest.mark.parametrize("command", ["enroll", "enroll_bulk"])
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "is not a CSV file"),
        (b"mail;given_name\nx@example.org;X\n", "lacks surname"),
        ("mail,given_name,surname\nj@example.org,J\u00fcrgen,M\n".encode("latin-1"), "is not UTF-8 text"),
        (b"jane@example.org,Jane,Doe\n", "is not a header row"),
    ],
    ids=["binary", "missing-column", "latin-1", "no-header"],
)
def test_a_file_that_is_not_a_csv_is_one_line_and_exit_2(pki_admin, csv_file, command, content, expected):
    path = str(csv_file(content))
    error = enroll_refused(*(["--csv", path] if command == "enroll" else [path]), command=command)

    assert error.returncode == 2 and expected in str(error) and "\n" not in str(error), str(error)
    assert counts()[1] == 0 and not EnrollmentBatch.objects.exists()


def test_a_missing_file_and_no_directory_are_exit_2(pki_admin, tmp_path, settings):
    error = enroll_refused("--csv", str(tmp_path / "absent.csv"))
    assert error.returncode == 2 and "Cannot read" in str(error)

    settings.PORTAL_LDAP_URI = ""
    error = enroll_refused("--ldap-group", "cn=staff,ou=groups,dc=example,dc=org")
    assert error.returncode == 2 and "No directory is configured" in str(error)


def test_one_source_exactly(pki_admin, csv_file):
    with pytest.raises(CommandError, match="one of the arguments --csv --ldap-group is required"):
        call_command("enroll", "--actor", "pkiadmin")
    with pytest.raises(CommandError, match="not allowed with argument"):
        call_command("enroll", "--csv", str(csv_file(MINIMAL)), "--ldap-group", "cn=x", "--actor", "pkiadmin")


def test_only_an_active_pki_administrator_starts_a_batch(approver, auditor, csv_file):
    for who in ("approver", "auditor"):
        error = enroll_refused("--csv", str(csv_file(MINIMAL)), actor=who)
        assert "is not an active PKI administrator" in str(error)
    assert not EnrollmentBatch.objects.exists() and not CertificateRequest.objects.exists()


def test_the_service_refuses_a_non_administrator_too(approver):
    from core.exceptions import NotAllowed
    from enrollment.bulk import bulk_file_read
    from enrollment.bulk_batches import enrollment_batch_run

    with pytest.raises(NotAllowed):
        enrollment_batch_run(actor=approver, rows=bulk_file_read(MINIMAL.encode()), source="x.csv")
    assert not EnrollmentBatch.objects.exists()


def test_a_row_the_services_refuse_is_rolled_back_alone_within_its_group_of_rows(pki_admin, csv_file, monkeypatch):
    from django.core.exceptions import ValidationError

    from enrollment import bulk

    real = bulk.certificate_request_create

    def refuse_min(**kwargs):
        if kwargs["employee"].mail == "m.lee@example.org":
            raise ValidationError({"key_type": "refused for the test"})
        return real(**kwargs)

    monkeypatch.setattr(bulk, "certificate_request_create", refuse_min)

    out, err = enroll("--csv", str(csv_file(MINIMAL)))

    assert "2 employees enrolled" in out and "1 failed" in out and "line 4, key_type: refused for the test" in err
    # The refused row's employee (created before its request was refused) is gone with it; the others stay.
    assert set(Employee.objects.exclude(user=pki_admin).values_list("mail", flat=True)) == {
        "jane.doe@example.org",
        "j.mueller@example.org",
    }
    batch = EnrollmentBatch.objects.get()
    assert (batch.created, batch.employees_created, batch.failed) == (2, 2, 1)
    assert not AuditEvent.objects.filter(action="employee.created", details__mail="m.lee@example.org").exists()
