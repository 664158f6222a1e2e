"""Expiry marking and reminders (once per threshold), renewal, offboarding of leavers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone
from portal_testing import PASSWORD

from audit.models import AuditEvent
from core.exceptions import InvalidState, NotAllowed, SeparationOfDuties
from enrollment.models import Certificate, CertificateRequest, ExpiryNotice
from enrollment.revocation.services import certificate_revoke
from enrollment.services.employees import employee_offboard
from enrollment.services.expiry import certificates_expire, expiry_notices_send
from enrollment.services.requests import certificate_renewal_request, certificate_request_create
from escrow.models import EscrowRecord


def _expire_in(certificate, days: float) -> Certificate:
    Certificate.objects.filter(pk=certificate.pk).update(not_after=timezone.now() + timedelta(days=days))
    return Certificate.objects.get(pk=certificate.pk)


def test_expired_certificates_are_marked_once(pki, issued):
    assert certificates_expire() == 0
    _expire_in(issued, -0.001)
    assert certificates_expire() == 1
    assert Certificate.objects.get(pk=issued.pk).status == "expired"
    assert certificates_expire() == 0
    assert AuditEvent.objects.filter(action="certificate.expired", object_id=str(issued.pk)).count() == 1


def test_reminders_go_once_per_threshold(pki, issued, settings):
    settings.PORTAL_EXPIRY_NOTICE_DAYS = [30, 7, 1]
    _expire_in(issued, 40)
    assert expiry_notices_send() == 0
    _expire_in(issued, 20)
    assert expiry_notices_send() == 1
    assert expiry_notices_send() == 0  # the same threshold never twice
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [issued.mailbox] and issued.serial in message.body
    _expire_in(issued, 6)
    assert expiry_notices_send() == 1
    _expire_in(issued, 0.5)
    assert expiry_notices_send() == 1
    assert expiry_notices_send() == 0
    assert len(mail.outbox) == 3
    assert sorted(ExpiryNotice.objects.filter(certificate=issued).values_list("threshold_days", flat=True)) == [1, 7, 30]


def test_first_reminder_inside_several_thresholds_is_one_mail_for_the_nearest(pki, issued, settings):
    _expire_in(issued, 3)
    call_command("notify_expiring", "--days", "30", "--days", "7", "--days", "1")
    assert len(mail.outbox) == 1
    assert sorted(ExpiryNotice.objects.filter(certificate=issued).values_list("threshold_days", flat=True)) == [7, 30]
    event = AuditEvent.objects.get(action="certificate.expiry_notice_sent")
    assert event.details["threshold_days"] == 7


def test_revoked_and_expired_certificates_get_no_reminder(pki, issued, approver):
    _expire_in(issued, 5)
    certificate_revoke(serial=issued.serial, actor=approver, reason="superseded")
    assert expiry_notices_send(thresholds=[30]) == 0


def test_notify_expiring_rejects_negative_days(pki):
    with pytest.raises(CommandError, match="at least 0"):
        call_command("notify_expiring", "--days", "-3")


def test_renewal_is_refused_before_the_window(pki, issued, alice):
    with pytest.raises(InvalidState, match="can be renewed from"):
        certificate_renewal_request(serial=issued.serial, user=alice)


def test_renewal_of_an_unchanged_identity_is_issued_at_once_and_keeps_the_old_key_escrowed(pki, issued, alice, settings):
    settings.PORTAL_RENEWAL_AUTO_APPROVE = True
    _expire_in(issued, 10)
    renewal = certificate_renewal_request(serial=issued.serial, user=alice)
    assert renewal.state == "issued", renewal.reason
    assert renewal.renewal_of == issued and renewal.decided_by is None
    new = renewal.certificate
    assert (new.key_type, new.certificate_type, new.mailbox) == (issued.key_type, issued.certificate_type, issued.mailbox)
    assert new.x509.public_key() != issued.x509.public_key()
    assert EscrowRecord.objects.filter(certificate__in=[issued, new]).count() == 2
    assert AuditEvent.objects.filter(action="request.auto_approved", object_id=str(renewal.pk)).exists()
    with pytest.raises(InvalidState, match="renewed already"):
        certificate_renewal_request(serial=issued.serial, user=alice)


def test_renewal_goes_to_an_approver_when_the_policy_says_so_or_the_name_changed(pki, issued, alice, settings):
    from enrollment.services.employees import employee_upsert

    settings.PORTAL_RENEWAL_AUTO_APPROVE = True
    _expire_in(issued, 10)
    employee_upsert(user=alice, mail=alice.employee.mail, given_name="Alice", surname="Archer-Smith")
    renewal = certificate_renewal_request(serial=issued.serial, user=alice)
    assert renewal.state == "pending"


def test_renewal_from_the_self_service_page(pki, issued, alice, client, settings):
    settings.PORTAL_RENEWAL_AUTO_APPROVE = False
    client.login(username="alice", password=PASSWORD)
    assert b"/renew/" not in client.get("/").content
    _expire_in(issued, 10)
    assert f"/certificates/{issued.serial}/renew/".encode() in client.get("/").content
    page = client.post(f"/certificates/{issued.serial}/renew/", follow=True)
    assert "An approver will review it" in page.content.decode()
    assert CertificateRequest.objects.get(renewal_of=issued).state == "pending"


def test_offboarding_revokes_withdraws_and_deactivates_but_keeps_escrow(pki, issued, alice, capsys):
    pending = certificate_request_create(employee=alice.employee, submitted_by=alice)
    call_command("offboard", "alice")
    assert "Offboarded alice" in capsys.readouterr().out
    certificate = Certificate.objects.get(pk=issued.pk)
    assert (certificate.status, certificate.revocation_reason) == ("revoked", "cessation_of_operation")
    pending.refresh_from_db()
    assert pending.state == "rejected"
    alice.refresh_from_db()
    assert not alice.is_active
    assert EscrowRecord.objects.filter(certificate=issued).exists()
    assert AuditEvent.objects.filter(action="employee.offboarded").get().details["revoked"] == [issued.serial]
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("offboard", "nobody")


def test_offboarding_needs_a_revoker_and_not_oneself(pki, issued, alice, bob, approver):
    with pytest.raises(NotAllowed):
        employee_offboard(user=alice, actor=bob)
    with pytest.raises(SeparationOfDuties):
        employee_offboard(user=approver, actor=approver)
    assert Certificate.objects.get(pk=issued.pk).status == "valid"


def test_offboarding_from_the_admin(pki, issued, alice, approver, client):
    client.force_login(approver)
    url = "/admin/enrollment/employee/"
    confirm = client.post(url, {"action": "offboard_selected", "_selected_action": [alice.employee.pk]})
    assert confirm.status_code == 200 and b"Escrowed keys stay" in confirm.content
    done = client.post(
        url, {"action": "offboard_selected", "_selected_action": [alice.employee.pk], "confirm": "yes"}, follow=True
    )
    assert any("Offboarded alice@example.org" in str(m) for m in done.context["messages"])
    alice.refresh_from_db()
    assert not alice.is_active


def test_a_failing_mail_server_skips_one_reminder_and_retries_it_next_run(pki, issued, settings, monkeypatch):
    from django.core.mail.backends.locmem import EmailBackend

    _expire_in(issued, 5)
    real_send = EmailBackend.send_messages

    def refuse(self, messages):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(EmailBackend, "send_messages", refuse)
    assert expiry_notices_send(thresholds=[7]) == 0
    assert not ExpiryNotice.objects.filter(certificate=issued).exists()  # nothing recorded as sent
    monkeypatch.setattr(EmailBackend, "send_messages", real_send)
    assert expiry_notices_send(thresholds=[7]) == 1
    assert len(mail.outbox) == 1
