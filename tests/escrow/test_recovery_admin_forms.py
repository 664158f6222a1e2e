"""The recovery admin's forms: pickers instead of ids, an agent's file kept across a mistyped
passphrase (sealed, its key only in the page), and messages that say the state things are in."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from test_recovery_support import (  # noqa: F401 - fixtures
    AGENT_PASSPHRASE,
    agent_p12,
    agent_user,
    approved_recovery,
    login,
    messages_of,
)

from escrow.admin_messages import decision_outcome
from escrow.admin_uploads import SESSION_KEY
from escrow.models import RecoveryRequest

CHANGELIST = "/admin/escrow/recoveryrequest/"
ADD = f"{CHANGELIST}add/"


def _upload(data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile("kim-agent.p12", data, content_type="application/x-pkcs12")


def _kept_key(page) -> str:
    return page.context["kept"].key


def _stored_sessions() -> bytes:
    return b"".join(session.session_data.encode() for session in Session.objects.all())


# --- Messages: the state a request is really in -----------------------------------------------


@pytest.mark.parametrize(
    ("approvals", "required", "status", "expected"),
    [
        (1, 2, "pending", "Approval 1 of 2 recorded; recovery #5 waits for a second approver."),
        (1, 3, "pending", "Approval 1 of 3 recorded; recovery #5 waits for 2 more approver(s)."),
        (2, 2, "approved", "Approval 2 of 2 recorded; recovery #5 is approved: a key recovery agent can complete it"),
    ],
)
def test_an_approval_says_how_many_are_recorded_and_what_the_request_waits_for(approvals, required, status, expected):
    recovery = SimpleNamespace(
        pk=5, approvals=approvals, required_approvals=required, status=status, approval_expires_at=None
    )
    assert decision_outcome(recovery, verb="approved").startswith(expected)


# --- The agent's file, kept across a mistyped passphrase --------------------------------------


@pytest.fixture
def completion(approved_recovery, agent_user, client):
    login(client, "agent")
    return f"{CHANGELIST}{approved_recovery.pk}/complete/"


def test_a_wrong_passphrase_keeps_the_file_sealed_and_the_retyped_passphrase_completes(
    completion, approved_recovery, agent_p12, client
):
    wrong = client.post(completion, {"agent_pkcs12": _upload(agent_p12), "passphrase": "not the passphrase"})
    assert wrong.status_code == 200 and b"cannot be opened" in wrong.content
    html = wrong.content.decode()
    assert "kim-agent.p12" in html and 'name="kept_upload"' in html
    file_input = re.search(r'<input type="file" name="agent_pkcs12"[^>]*>', html).group(0)
    assert "required" not in file_input  # else the browser refuses to send the form without a file
    # Neither the page nor the session store holds the file: the page only the key, the session only sealed bytes.
    for encoded in (agent_p12, base64.b64encode(agent_p12), base64.urlsafe_b64encode(agent_p12)):
        assert encoded[:48] not in wrong.content
        assert encoded[:48] not in _stored_sessions()
    assert AGENT_PASSPHRASE.encode() not in _stored_sessions()

    # Only the passphrase again, no file: the kept one is used.
    response = client.post(completion, {"passphrase": AGENT_PASSPHRASE, "kept_upload": _kept_key(wrong)}, follow=True)
    assert any("completed: 1 recovered key waits for alice" in m for m in messages_of(response)), messages_of(response)
    approved_recovery.refresh_from_db()
    assert approved_recovery.status == "completed"
    assert SESSION_KEY not in client.session  # wiped on success


def test_each_try_reseals_under_a_new_key_and_an_old_or_forged_key_opens_nothing(completion, agent_p12, client):
    first = client.post(completion, {"agent_pkcs12": _upload(agent_p12), "passphrase": "wrong one"})
    second = client.post(completion, {"passphrase": "wrong two", "kept_upload": _kept_key(first)})
    assert second.status_code == 200 and b"cannot be opened" in second.content
    assert _kept_key(second) != _kept_key(first)

    stale = client.post(completion, {"passphrase": AGENT_PASSPHRASE, "kept_upload": _kept_key(first)})
    assert stale.status_code == 200 and b"The file kept from your last try is gone" in stale.content
    assert SESSION_KEY not in client.session  # a key that does not fit wipes what was kept
    forged = client.post(completion, {"passphrase": AGENT_PASSPHRASE, "kept_upload": "A" * 43 + "="})
    assert forged.status_code == 200 and b"The file kept from your last try is gone" in forged.content


def test_the_kept_file_expires_and_a_reload_forgets_it(completion, agent_p12, client, monkeypatch):
    wrong = client.post(completion, {"agent_pkcs12": _upload(agent_p12), "passphrase": "wrong"})
    later = timezone.now() + timedelta(minutes=11)
    monkeypatch.setattr("escrow.admin_uploads.timezone.now", lambda: later)
    expired = client.post(completion, {"passphrase": AGENT_PASSPHRASE, "kept_upload": _kept_key(wrong)})
    assert b"The file kept from your last try is gone (after 10 minutes" in expired.content
    monkeypatch.undo()

    wrong = client.post(completion, {"agent_pkcs12": _upload(agent_p12), "passphrase": "wrong"})
    assert SESSION_KEY in client.session
    assert client.get(completion).status_code == 200
    assert SESSION_KEY not in client.session


def test_a_missing_passphrase_keeps_a_new_upload_too(completion, agent_p12, client):
    page = client.post(completion, {"agent_pkcs12": _upload(agent_p12), "passphrase": ""})
    assert page.status_code == 200 and b"This field is required" in page.content
    assert page.context["kept"] is not None and SESSION_KEY in client.session


def test_an_error_no_passphrase_cures_keeps_nothing(pki, issued, alice, agent_user, agent_p12, client):
    from escrow.services.recovery import recovery_request_create

    pending = recovery_request_create(requested_by=alice, reason="lost", serial=issued.serial)
    login(client, "agent")
    page = client.post(
        f"{CHANGELIST}{pending.pk}/complete/", {"agent_pkcs12": _upload(agent_p12), "passphrase": AGENT_PASSPHRASE}
    )
    assert page.status_code == 200 and b"is pending, not approved" in page.content
    assert page.context["kept"] is None and SESSION_KEY not in client.session


def test_a_file_kept_for_one_request_does_not_open_for_another(
    completion, approved_recovery, agent_p12, client, issued, bob, pki_admin, approver, approver2
):
    from escrow.services.recovery import recovery_request_approve, recovery_request_create

    wrong = client.post(completion, {"agent_pkcs12": _upload(agent_p12), "passphrase": "wrong"})
    other = recovery_request_create(
        requested_by=pki_admin, reason="for bob", serial=issued.serial, recipient_username="bob"
    )
    assert other.pk != approved_recovery.pk
    recovery_request_approve(request_id=other.pk, approver=approver)
    recovery_request_approve(request_id=other.pk, approver=approver2)
    page = client.post(
        f"{CHANGELIST}{other.pk}/complete/", {"passphrase": AGENT_PASSPHRASE, "kept_upload": _kept_key(wrong)}
    )
    assert b"The file kept from your last try is gone" in page.content
    other.refresh_from_db()
    assert other.status == "approved"


# --- Pickers instead of ids -------------------------------------------------------------------


def _picked(client, kind: str, term: str = "") -> list[dict]:
    response = client.get(f"{CHANGELIST}pick/{kind}/", {"term": term})
    assert response.status_code == 200
    return json.loads(response.content)["results"]


def test_the_request_form_offers_searchable_pickers_with_readable_labels(pki, issued, pki_admin, client):
    login(client, "pkiadmin")
    page = client.get(ADD)
    html = page.content.decode()
    assert page.status_code == 200
    for kind in ("certificate", "employee", "recipient"):
        assert f'data-ajax--url="{CHANGELIST}pick/{kind}/"' in html
    assert "admin/js/autocomplete.js" in html  # select2, from the admin's own static files

    certificates = _picked(client, "certificate", "alice")
    assert certificates == [
        {
            "id": str(issued.pk),
            "text": f"Alice Archer <alice@example.org> — serial {issued.serial} "
            f"(valid, expires {issued.not_after:%Y-%m-%d})",
        }
    ]
    assert _picked(client, "certificate", issued.serial[:6].upper())[0]["id"] == str(issued.pk)  # a pasted serial
    assert _picked(client, "certificate", "nobody-like-this") == []
    assert _picked(client, "employee", "arch") == [
        {"id": str(issued.employee.pk), "text": "Alice Archer <alice@example.org> (alice)"}
    ]
    assert any(
        choice["text"] == "Petra Admin <pkiadmin@example.org> (pkiadmin)" for choice in _picked(client, "recipient")
    )
    assert client.get(f"{CHANGELIST}pick/password/").status_code == 404
    assert client.get(f"{CHANGELIST}pick/certificate/", {"page": "x"}).status_code == 200


def test_only_those_who_may_request_see_the_pickers(pki, issued, approver, client):
    login(client, "approver")
    assert client.get(f"{CHANGELIST}pick/certificate/").status_code == 403


def test_a_picked_certificate_makes_the_request_and_a_re_shown_form_names_it(pki, issued, pki_admin, client):
    login(client, "pkiadmin")
    page = client.post(ADD, {"certificate": issued.pk, "reason": ""})  # the reason is missing
    assert page.status_code == 200
    assert f"serial {issued.serial}" in page.content.decode()  # the picked certificate, by its label
    response = client.post(ADD, {"certificate": issued.pk, "reason": "Helpdesk 99"}, follow=True)
    created = RecoveryRequest.objects.get()
    assert (created.certificate, created.recipient.username, created.purpose) == (issued, "alice", "admin")
    assert any("waits for 2 approvals" in m for m in messages_of(response))


@pytest.mark.parametrize("value", ["alice", "abc", "9" * 30, "-1", "99999"])
def test_a_typed_or_tampered_value_is_a_form_error_not_a_500(pki, issued, pki_admin, client, value):
    login(client, "pkiadmin")
    page = client.post(ADD, {"certificate": value, "reason": "x"})
    assert page.status_code == 200
    assert page.context["form"].errors["certificate"] == [
        "Select a valid choice. That choice is not one of the available choices."
    ]
    assert not RecoveryRequest.objects.exists()


def test_an_auditor_requests_a_legal_hold_of_a_picked_employee(pki, issued, auditor, client):
    login(client, "auditor")
    response = client.post(
        ADD, {"employee": issued.employee.pk, "reason": "Court order 12/26", "purpose": "legal-hold"}, follow=True
    )
    created = RecoveryRequest.objects.get()
    assert (created.employee, created.purpose, created.recipient) == (issued.employee, "legal-hold", auditor)
    assert any(f"Recovery request #{created.pk} made" in m for m in messages_of(response))
    page = client.post(
        ADD,
        {"employee": issued.employee.pk, "reason": "x", "purpose": "legal-hold", "recipient": issued.employee.user.pk},
    )
    assert b"Keys recovered for legal hold go to you" in page.content
