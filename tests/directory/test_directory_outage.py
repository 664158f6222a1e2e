"""Nothing is lost when the directory is down or refuses us: rows, retries, the command, the admin."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from portal_testing import PASSWORD
from slapd_server import person_dn

from audit.models import AuditEvent
from enrollment.directory.drain import publications_drain
from enrollment.directory.services import publication_schedule, retry_delay
from enrollment.models import Certificate, DirectoryPublication
from enrollment.services.requests import certificate_request_approve, certificate_request_create

ALICE = person_dn("alice")
BINARY = "userCertificate;binary"
CHANGELIST = "/admin/enrollment/directorypublication/"


def directory_events(certificate) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(object_id=str(certificate.pk), action__startswith="directory.").order_by("id")
    )


def test_outage_then_publish_pending(ldap_settings, directory, issue_certificate, alice, capsys):
    directory.stop()
    certificate = issue_certificate(alice)  # approval and issuance do not wait for the directory

    publication = DirectoryPublication.objects.get(certificate=certificate)
    assert publication.state == "failed" and publication.attempts == 1
    assert f"{directory.uri}: cannot connect" in publication.last_error
    assert publication.next_attempt_at > timezone.now() + timedelta(seconds=30)

    directory.start()
    call_command("publish_pending")  # not due yet: nothing happens
    publication.refresh_from_db()
    assert publication.state == "failed"
    assert "0 of 0 due" in capsys.readouterr().out

    call_command("publish_pending", "--all")

    publication.refresh_from_db()
    assert publication.state == "published" and publication.attempts == 2 and not publication.last_error
    assert directory.values(ALICE, BINARY) == [bytes(certificate.der)]
    assert "1 published" in capsys.readouterr().out
    events = directory_events(certificate)
    assert [event.action for event in events] == ["directory.publish_failed", "directory.published"]
    assert events[0].details["attempt"] == 1 and "cannot connect" in events[0].details["error"]
    assert events[1].details["attempt"] == 2


def test_drain_takes_what_is_due_as_time_passes(ldap_settings, directory, issued):
    publication = publication_schedule(certificate=issued)
    DirectoryPublication.objects.filter(pk=publication.pk).update(
        state="failed", attempts=3, next_attempt_at=timezone.now() + timedelta(minutes=10)
    )

    assert publications_drain().due == 0
    summary = publications_drain(now=timezone.now() + timedelta(minutes=11))

    assert (summary.due, summary.published, summary.failed) == (1, 1, 0)
    assert directory.values(ALICE, BINARY) == [bytes(issued.der)]


def test_retry_backoff_doubles_up_to_the_cap(settings):
    settings.PORTAL_LDAP_RETRY_BASE_SECONDS = 60
    settings.PORTAL_LDAP_RETRY_MAX_SECONDS = 3600
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4, 7, 100)] == [60, 120, 240, 480, 3600, 3600]


def test_publish_pending_fails_with_one_line_when_the_directory_is_down(ldap_settings, directory, pki, alice, bob, approver):
    certificates = []
    for user in (alice, bob):
        request = certificate_request_create(employee=user.employee, submitted_by=user, key_type="ec-p256")
        certificates.append(certificate_request_approve(request_id=request.pk, approver=approver).certificate)
    directory.stop()

    with pytest.raises(CommandError) as raised:
        call_command("publish_pending")

    message = str(raised.value)
    assert raised.value.returncode == 1
    assert "\n" not in message
    assert message.startswith("directory unavailable, 2 publication(s) wait for the next run:")
    assert "cannot connect" in message and directory.uri in message
    # The failure is recorded on the first row; the drain stopped there, the other stays due.
    states = {p.certificate_id: p for p in DirectoryPublication.objects.all()}
    first, second = (states[c.pk] for c in certificates)
    assert (first.state, first.attempts) == ("failed", 1) and "cannot connect" in first.last_error
    assert (second.state, second.attempts) == ("pending", 0)
    assert [e.action for e in directory_events(certificates[0])] == ["directory.publish_failed"]


def test_wrong_bind_password_is_reported_and_retried_from_the_admin(
    ldap_settings, directory, issue_certificate, alice, make_user, client
):
    ldap_settings.PORTAL_LDAP_BIND_PASSWORD = "not-the-password"
    certificate = issue_certificate(alice)

    publication = DirectoryPublication.objects.get(certificate=certificate)
    assert publication.state == "failed" and publication.attempts == 1
    assert "invalidCredentials: wrong bind DN or password" in publication.last_error
    assert "cn=portal,ou=services,dc=example,dc=org" in publication.last_error
    assert "not-the-password" not in publication.last_error
    assert not any("not-the-password" in str(e.details) for e in AuditEvent.objects.all())

    make_user("admin", superuser=True)
    assert client.login(username="admin", password=PASSWORD)
    response = client.get(CHANGELIST, {"state": "failed"})
    assert [p.pk for p in response.context["cl"].result_list] == [publication.pk]
    assert "invalidCredentials" in response.content.decode()
    detail = client.get(f"{CHANGELIST}{publication.pk}/change/")
    assert detail.status_code == 200 and "wrong bind DN or password" in detail.content.decode()

    response = client.post(CHANGELIST, {"action": "retry_selected", "_selected_action": [publication.pk]}, follow=True)
    messages = [str(m) for m in response.context["messages"]]
    assert len(messages) == 1
    assert messages[0].startswith(f"Certificate {certificate.serial}: publish failed:")
    assert "invalidCredentials: wrong bind DN or password" in messages[0] and "retried automatically" in messages[0]
    # Nothing lost: the certificate is issued, the row is there, it counted the attempt.
    publication.refresh_from_db()
    assert (publication.state, publication.attempts) == ("failed", 2)
    assert Certificate.objects.get(pk=certificate.pk).request.state == "issued"
    assert directory.values(ALICE, BINARY) == []

    ldap_settings.PORTAL_LDAP_BIND_PASSWORD = "slapd-publisher-password"
    response = client.post(CHANGELIST, {"action": "retry_selected", "_selected_action": [publication.pk]}, follow=True)
    messages = [str(m) for m in response.context["messages"]]
    assert messages == [f"Certificate {certificate.serial}: published ({ALICE})."]
    publication.refresh_from_db()
    assert publication.state == "published" and publication.attempts == 3
    assert directory.values(ALICE, BINARY) == [bytes(certificate.der)]
    actions = [(e.action, e.actor_name) for e in directory_events(certificate)]
    assert actions == [
        ("directory.publish_failed", ""),
        ("directory.publish_failed", "admin"),
        ("directory.published", "admin"),
    ]


def test_retry_needs_the_permission(ldap_settings, directory, issued, client, approver):
    publication_schedule(certificate=issued)
    approver.is_staff = True
    approver.save()
    client.login(username="approver", password=PASSWORD)
    # Approvers cannot even see the publications; the action is for PKI administrators.
    assert client.get(CHANGELIST).status_code == 403


def test_without_a_directory_nothing_is_recorded(settings, issue_certificate, alice):
    settings.PORTAL_LDAP_URI = ""

    certificate = issue_certificate(alice)

    assert certificate.request.state == "issued"
    assert not DirectoryPublication.objects.exists()
    assert publications_drain().due == 0
    assert not AuditEvent.objects.filter(action__startswith="directory.").exists()


def test_a_directory_that_does_not_answer_times_out(ldap_settings, directory, issued):
    import time

    from enrollment.directory.batch import publication_attempt

    ldap_settings.PORTAL_LDAP_TIMEOUT = 1
    ldap_settings.PORTAL_LDAP_RECEIVE_TIMEOUT = 1
    publication = publication_schedule(certificate=issued)
    directory.pause()  # the kernel accepts the connection; slapd never answers the bind
    try:
        started = time.monotonic()
        result = publication_attempt(publication=publication)
        elapsed = time.monotonic() - started
    finally:
        directory.resume()

    assert not result.ok and result.unavailable
    assert elapsed < 5
    assert result.publication.state == "failed"
    assert f"{directory.uri}: no answer within 1 s" in result.publication.last_error


def test_a_batch_binds_once(ldap_settings, directory, pki, alice, bob, approver, monkeypatch):
    import ldap3

    for user in (alice, bob):
        request = certificate_request_create(employee=user.employee, submitted_by=user, key_type="ec-p256")
        certificate_request_approve(request_id=request.pk, approver=approver)
    binds = []
    original = ldap3.Connection.bind
    monkeypatch.setattr(ldap3.Connection, "bind", lambda self, *a, **k: binds.append(1) or original(self, *a, **k))

    summary = publications_drain()

    assert (summary.due, summary.published) == (2, 2) and len(binds) == 1
    assert directory.values(person_dn("bob"), BINARY) != [] and directory.values(ALICE, BINARY) != []
