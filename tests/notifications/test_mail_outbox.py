"""The outbox: mail is recorded in the step's transaction and sent after commit; a failing mail
server fails no step and loses nothing (`send_pending_mail` sends it later); a rolled-back step
mails nobody."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone
from mail_testing import REFUSING_BACKEND, assert_mail_shape, links

from enrollment.models import CertificateRequest
from enrollment.notifications.models import OutboxMail
from enrollment.notifications.outbox import mail_outbox_drain, mail_outbox_send, retry_delay
from enrollment.services.requests import certificate_request_approve, certificate_request_create

pytestmark = pytest.mark.django_db


def _pending():
    return OutboxMail.objects.filter(state=OutboxMail.State.PENDING)


def test_mail_is_sent_only_after_commit(pki, alice, approver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
        row = OutboxMail.objects.get(kind="request.pending")  # written in the transaction ...
        assert mail.outbox == []  # ... but nothing sent yet
    (send,) = [callback for callback in callbacks if getattr(callback, "func", None) is mail_outbox_send]
    send()
    assert [m.to for m in mail.outbox] == [["approver@example.org"]]
    row.refresh_from_db()
    assert (row.state, row.attempts, row.sent_at is not None) == ("sent", 1, True)


def test_recording_a_mail_reads_nothing_the_caller_has_loaded(alice):
    """Per recipient one INSERT: no query for the account's employee record, none to check the account exists
    (issue 13: they were two of an issuance's statements)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from enrollment.notifications.outbox import _record

    user = get_user_model().objects.select_related("employee").get(pk=alice.pk)
    with CaptureQueriesContext(connection) as queries:
        (row,) = _record(kind="request.rejected", about="certificaterequest:1", users=[user], template="request_rejected",
                         subject="Your certificate request #1 was rejected",
                         context={"request": None, "employee": user.employee, "home_url": "https://portal.example/"})  # fmt: skip
    statements = [query["sql"].split()[0] for query in queries.captured_queries if "SAVEPOINT" not in query["sql"]]
    assert statements == ["INSERT"]
    assert (row.to, row.recipient_id) == ("alice@example.org", alice.pk)


def test_a_mail_goes_to_the_account_address_when_the_account_has_no_employee_record(db):
    from django.contrib.auth import get_user_model

    from enrollment.notifications.outbox import _record

    user = get_user_model().objects.create_user("auditor2", email="auditor2@example.org")
    (row,) = _record(kind="request.rejected", about="certificaterequest:1", users=[user], template="request_rejected",
                     subject="Subject", context={"request": None, "employee": None, "home_url": "https://portal.example/"})  # fmt: skip
    assert row.to == "auditor2@example.org"


def test_a_rolled_back_step_mails_nobody_and_leaves_no_row(pki, alice, approver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
            raise RuntimeError("the step fails after the mail was recorded")
    assert callbacks == [] and mail.outbox == []
    assert not OutboxMail.objects.exists() and not CertificateRequest.objects.exists()


def test_a_failing_mail_server_fails_no_step_and_loses_nothing(
    pki, alice, approver, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = REFUSING_BACKEND
    with django_capture_on_commit_callbacks(execute=True):
        request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    with django_capture_on_commit_callbacks(execute=True):
        request = certificate_request_approve(request_id=request.pk, approver=approver)
    assert request.state == "issued"  # the workflow went on
    assert mail.outbox == []
    # The approvers' mail was dropped (the request is decided); the employee's waits, with the error.
    (row,) = _pending()
    assert (row.kind, row.to, row.attempts) == ("certificate.ready", "alice@example.org", 1)
    assert "SMTPException" in row.last_error and row.next_attempt_at > timezone.now()

    # Still down: the periodic job tries again once the backoff is over, and says so.
    OutboxMail.objects.update(next_attempt_at=timezone.now())
    with pytest.raises(CommandError, match="No mail sent: sent 0, failed 1, pending 1"):
        call_command("send_pending_mail")
    row.refresh_from_db()
    assert row.attempts == 2 and row.state == "pending"

    # Back up: sent, once.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    OutboxMail.objects.update(next_attempt_at=timezone.now())
    call_command("send_pending_mail")
    (message,) = mail.outbox
    assert message.to == ["alice@example.org"] and "ready" in message.subject
    assert_mail_shape(message, link=links(message.body)[0])
    row.refresh_from_db()
    assert (row.state, row.attempts, row.last_error) == ("sent", 3, "")
    call_command("send_pending_mail")
    assert len(mail.outbox) == 1


def test_the_drain_waits_for_the_backoff_and_sends_oldest_first(pki, alice, bob, approver, settings):
    certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    certificate_request_create(employee=bob.employee, submitted_by=bob, key_type="ec-p256")
    later = timezone.now() + timedelta(minutes=5)
    OutboxMail.objects.filter(about__endswith=str(CertificateRequest.objects.get(employee=bob.employee).pk)).update(
        next_attempt_at=later
    )
    summary = mail_outbox_drain()
    assert (summary.sent, summary.failed, summary.pending) == (1, 0, 1)
    assert "alice@example.org" in mail.outbox[0].subject
    assert str(mail_outbox_drain(now=later)) == "sent 1, failed 0, pending 0"


def test_two_senders_never_send_one_row_twice(pki, alice, approver):
    from enrollment.notifications.outbox import _attempt

    certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    row = _pending().get()
    stale_copy = OutboxMail.objects.get(pk=row.pk)
    assert _attempt(row, now=timezone.now()) is True
    assert _attempt(stale_copy, now=timezone.now()) is None  # claimed and sent by the first
    assert len(mail.outbox) == 1


def test_the_backoff_is_exponential_and_capped():
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3)] == [60, 120, 240]
    assert retry_delay(50) == timedelta(hours=6)


def test_celery_beat_retries_the_outbox(settings):
    from portal.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["mail-outbox-drain"]
    assert entry["task"] == "notifications.mail_outbox_drain" and entry["schedule"] <= 600
    app.loader.import_default_modules()
    assert "notifications.mail_outbox_drain" in app.tasks
