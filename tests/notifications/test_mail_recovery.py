"""Mail about key recoveries: the owner hears of every step (a hostile request cannot go
unnoticed), approvers are asked to decide, agents to complete, the requester learns the end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from mail_testing import AGENT_PASSPHRASE, assert_mail_shape, assert_no_secrets, links, mails_to, path_of

from escrow.models import RecoveryRequest
from escrow.services.recovery import (
    recovery_request_approve,
    recovery_request_complete,
    recovery_request_create,
    recovery_request_reject,
)
from escrow.services.recovery_close import recoveries_expire, recovery_request_withdraw

pytestmark = pytest.mark.django_db


@pytest.fixture
def hostile(issued, pki_admin):
    """A PKI administrator asks for alice's key for themself (purpose admin)."""
    return recovery_request_create(
        requested_by=pki_admin, reason="Audit", serial=issued.serial, recipient_username="pkiadmin"
    )


def _approve_all(recovery, *approvers, capture):
    for who in approvers[:-1]:
        recovery_request_approve(request_id=recovery.pk, approver=who)
    with capture(execute=True):
        return recovery_request_approve(request_id=recovery.pk, approver=approvers[-1])


def test_a_recovery_request_tells_the_owner_and_asks_the_approvers_who_may_decide(
    pki, issued, alice, approver, approver2, pki_admin, client_of, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        recovery = recovery_request_create(
            requested_by=pki_admin, reason="Audit <script>", serial=issued.serial, recipient_username="pkiadmin"
        )
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.org", "approver2@example.org", "approver@example.org"]

    (owner_mail,) = mails_to("alice@example.org")
    assert "recovery of your S/MIME key was requested" in owner_mail.subject
    assert "Requested by: Petra Admin (pkiadmin)" in owner_mail.body and "Keys go to: Petra Admin" in owner_mail.body
    assert "Reason: Audit <script>" in owner_mail.body and "If you did not expect this, withdraw it" in owner_mail.body
    (own_page,) = links(owner_mail.body)
    assert_mail_shape(owner_mail, link=own_page)
    page = client_of(alice).get(path_of(own_page))
    # The owner sees the request on their page, with the button to withdraw it.
    assert page.status_code == 200 and f'data-recovery="{recovery.pk}"'.encode() in page.content

    (ask,) = mails_to("approver@example.org")
    (decide,) = links(ask.body)
    assert decide.endswith(f"/admin/escrow/recoveryrequest/{recovery.pk}/change/")
    assert_mail_shape(ask, link=decide)
    page = client_of(approver).get(path_of(decide))
    assert page.status_code == 200 and page.context["original"] == recovery


def test_approvers_who_are_party_to_the_recovery_are_not_asked(
    pki, issued, alice, approver, approver2, pki_admin, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        recovery_request_create(
            requested_by=pki_admin, reason="Deputy", serial=issued.serial, recipient_username="approver"
        )
    # The keys would go to approver: only approver2 may decide (and the owner is told).
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.org", "approver2@example.org"]


def test_an_approved_recovery_asks_the_agents_to_complete_it_and_tells_the_owner(
    pki, issued, alice, approver, approver2, agent_user, hostile, client_of, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        recovery_request_approve(request_id=hostile.pk, approver=approver)
    assert mail.outbox == [m for m in mail.outbox if "in escrow" in m.subject]  # one approval of two: no mail yet
    recovery = _approve_all(hostile, approver2, capture=django_capture_on_commit_callbacks)
    assert recovery.status == "approved"

    # The test agent's credential is bound to no account: every member of Key recovery agents is asked.
    (ask,) = mails_to("agent@example.org")
    assert "waits for a key recovery agent" in ask.subject
    assert f"{recovery.approval_expires_at:%Y-%m-%d %H:%M} UTC" in ask.body
    (complete,) = links(ask.body)
    assert complete.endswith(f"/admin/escrow/recoveryrequest/{recovery.pk}/complete/")
    assert_mail_shape(ask, link=complete)
    page = client_of(agent_user).get(path_of(complete))
    assert page.status_code == 200 and b"passphrase" in page.content

    (told,) = mails_to("alice@example.org")
    assert "was approved" in told.subject and "withdraw it on the portal now" in told.body
    assert_mail_shape(told, link=links(told.body)[0])


def test_with_bound_agent_credentials_only_their_accounts_are_asked(
    pki, issued, approver, approver2, agent_user, make_user, hostile, django_capture_on_commit_callbacks
):
    from enrollment.roles import KEY_RECOVERY_AGENTS

    make_user("agent2", groups=[KEY_RECOVERY_AGENTS])
    pki["agent"].user = agent_user
    pki["agent"].save()
    _approve_all(hostile, approver, approver2, capture=django_capture_on_commit_callbacks)
    assert [m.to for m in mail.outbox if "key recovery agent" in m.subject] == [["agent@example.org"]]


def test_a_rejection_tells_the_requester_and_the_owner_why(
    pki, issued, alice, approver, pki_admin, hostile, client_of, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        recovery_request_reject(request_id=hostile.pk, approver=approver, comment="Not approved by legal")
    for address, who in (("pkiadmin@example.org", pki_admin), ("alice@example.org", alice)):
        (message,) = mails_to(address)
        assert "was rejected" in message.subject and "Reason: Not approved by legal" in message.body
        (link,) = links(message.body)
        assert_mail_shape(message, link=link)
        assert client_of(who).get(path_of(link)).status_code == 200
    # The administrator's link is the request's admin page; the owner's, their self-service page.
    assert links(mails_to("pkiadmin@example.org")[0].body)[0].endswith(f"/admin/escrow/recoveryrequest/{hostile.pk}/change/")
    assert links(mails_to("alice@example.org")[0].body)[0].endswith("/recovery/")


def test_an_expired_approval_tells_the_requester_and_the_owner(
    pki, issued, approver, approver2, hostile, django_capture_on_commit_callbacks
):
    for who in (approver, approver2):
        recovery_request_approve(request_id=hostile.pk, approver=who)
    RecoveryRequest.objects.filter(pk=hostile.pk).update(approval_expires_at=timezone.now() - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert recoveries_expire() == 1
    assert sorted(m.to[0] for m in mail.outbox if "expired" in m.subject) == ["alice@example.org", "pkiadmin@example.org"]
    for message in mail.outbox:
        assert_mail_shape(message, link=links(message.body)[0])


def test_a_completed_recovery_tells_the_owner_and_the_recipient_where_to_download(
    pki, issued, alice, approver, approver2, agent_user, agent_p12, pki_admin, hostile, client_of,
    django_capture_on_commit_callbacks,
):
    for who in (approver, approver2):
        recovery_request_approve(request_id=hostile.pk, approver=who)
    with django_capture_on_commit_callbacks(execute=True):
        recovery = recovery_request_complete(
            request_id=hostile.pk, agent=agent_user, agent_pkcs12=agent_p12, passphrase=AGENT_PASSPHRASE
        )
    expires_at = recovery.pickups.get().expires_at
    (owner_mail,) = mails_to("alice@example.org")
    assert "was recovered" in owner_mail.subject and "Petra Admin (pkiadmin)" in owner_mail.body
    assert f"{expires_at:%Y-%m-%d %H:%M} UTC" in owner_mail.body and "tell your PKI administrators" in owner_mail.body
    (recipient_mail,) = mails_to("pkiadmin@example.org")
    (download,) = links(recipient_mail.body)
    assert_mail_shape(recipient_mail, link=download)
    page = client_of(pki_admin).get(path_of(download))
    assert page.status_code == 200 and issued.serial.encode() in page.content  # the pickup is listed there
    for message in mail.outbox:
        assert_no_secrets(message, secrets=(AGENT_PASSPHRASE,))
    assert mails_to("agent@example.org") == []  # the agent did it: no mail to them


def test_a_withdrawal_tells_the_owner_and_the_requester_but_not_who_withdrew(
    pki, issued, alice, pki_admin, hostile, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        recovery_request_withdraw(request_id=hostile.pk, actor=alice, reason="I did not ask for this")
    assert [m.to for m in mail.outbox if "withdrawn" in m.subject] == [["pkiadmin@example.org"]]
    (message,) = mails_to("pkiadmin@example.org")
    assert "withdrawn by Alice Archer" in message.body and "Why: I did not ask for this" in message.body
    assert_mail_shape(message, link=links(message.body)[0])
