"""The admin side of key recovery: auditors read but cannot change; approvers decide with a
confirmation page and a comment; PKI administrators request recoveries and deactivate agents."""

from __future__ import annotations

from test_recovery_support import (  # noqa: F401 - fixtures
    AGENT_PASSPHRASE,
    agent_p12,
    agent_user,
    approved_recovery,
    csrf_free_text,
    login,
    messages_of,
)

from enrollment.services.requests import certificate_request_approve, certificate_request_create
from escrow.models import KeyRecoveryAgent, RecoveryRequest
from escrow.services.recovery import recovery_request_create

CHANGELIST = "/admin/escrow/recoveryrequest/"


def test_auditors_read_recovery_requests_but_cannot_change_them(pki, approved_recovery, auditor, client):
    login(client, "auditor")
    listing = client.get(CHANGELIST)
    assert listing.status_code == 200 and listing.context["cl"].result_count == 1
    assert client.get(CHANGELIST, {"status": "approved"}).context["cl"].result_count == 1
    assert client.get(CHANGELIST, {"status": "pending"}).context["cl"].result_count == 0
    page = client.get(f"{CHANGELIST}{approved_recovery.pk}/change/")
    assert page.status_code == 200
    text = csrf_free_text(page.content)
    assert "Laptop stolen" in text and "ok too" in text  # the reason and the decisions
    assert 'name="_save"' not in text and "Delete" not in text
    assert "Complete with an agent key" not in text

    # No change, no delete, no decisions, no completion.
    assert client.post(f"{CHANGELIST}{approved_recovery.pk}/change/", {"reason": "edited"}).status_code == 403
    assert client.post(f"{CHANGELIST}{approved_recovery.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"{CHANGELIST}{approved_recovery.pk}/complete/").status_code == 403
    response = client.post(CHANGELIST, {"action": "reject_selected", "_selected_action": [approved_recovery.pk], "confirm": "yes", "comment": "x"})
    assert response.status_code in (200, 302)
    action_form = listing.context["action_form"]  # None: no action at all for auditors
    actions = [choice[0] for choice in action_form.fields["action"].choices] if action_form else []
    assert "approve_selected" not in actions and "reject_selected" not in actions
    approved_recovery.refresh_from_db()
    assert approved_recovery.status == "approved" and approved_recovery.reason == "Laptop stolen"
    assert approved_recovery.decisions.count() == 2


def test_auditors_see_which_agents_can_decrypt_an_escrow_record_and_no_key_material(pki, issued, auditor, client):
    login(client, "auditor")
    record = issued.escrow
    page = client.get(f"/admin/escrow/escrowrecord/{record.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Test Key Recovery Agent" in text and "recipients in the cms envelope" in text.lower()
    assert format(pki["material"].kra.serial_number, "x") in text
    assert "envelope_der" not in text and bytes(record.envelope_der).hex()[:40] not in text
    assert client.post(f"/admin/escrow/escrowrecord/{record.pk}/change/", {}).status_code == 403
    assert client.post(f"/admin/escrow/escrowrecord/{record.pk}/delete/", {"post": "yes"}).status_code == 403


def test_approvers_reject_with_a_comment_on_a_confirmation_page(pki, issued, alice, approver, client):
    request = recovery_request_create(requested_by=alice, reason="lost", serial=issued.serial)
    login(client, "approver")
    data = {"action": "reject_selected", "_selected_action": [request.pk]}
    page = client.post(CHANGELIST, data)
    assert page.status_code == 200 and b"One rejection ends a request" in page.content
    page = client.post(CHANGELIST, {**data, "confirm": "yes", "comment": ""})
    assert page.status_code == 200 and b"This field is required" in page.content  # asks again
    request.refresh_from_db()
    assert request.status == "pending"
    response = client.post(CHANGELIST, {**data, "confirm": "yes", "comment": "Not plausible"}, follow=True)
    assert f"Recovery #{request.pk} rejected: it is closed, and can no longer be approved or completed." in messages_of(
        response
    )
    assert request.decisions.get().comment == "Not plausible"


def test_admin_reports_separation_of_duties_per_request(pki, issued, alice, approver, approver2, client):

    own_request = certificate_request_create(employee=approver.employee, submitted_by=approver)
    own = certificate_request_approve(request_id=own_request.pk, approver=approver2).certificate
    own_recovery = recovery_request_create(requested_by=approver, reason="mine", serial=own.serial)
    other = recovery_request_create(requested_by=alice, reason="lost", serial=issued.serial)
    login(client, "approver")
    data = {"action": "approve_selected", "_selected_action": [own_recovery.pk, other.pk], "confirm": "yes", "comment": ""}
    messages = messages_of(client.post(CHANGELIST, data, follow=True))
    assert any(f"Recovery #{own_recovery.pk} not approved" in m and "separation of duties" in m for m in messages)
    assert f"Approval 1 of 2 recorded; recovery #{other.pk} waits for a second approver." in messages


def test_pki_administrators_request_a_recovery_in_the_admin(pki, issued, pki_admin, client):
    login(client, "pkiadmin")
    page = client.get(f"{CHANGELIST}add/")
    assert page.status_code == 200 and b"Request a key recovery" in page.content
    alice = issued.employee
    page = client.post(f"{CHANGELIST}add/", {"certificate": issued.pk, "employee": alice.pk, "reason": "x"})
    assert page.status_code == 200 and b"Name either a certificate" in page.content
    response = client.post(f"{CHANGELIST}add/", {"certificate": issued.pk, "reason": "Helpdesk 99"}, follow=True)
    created = RecoveryRequest.objects.get()
    assert (created.purpose, created.requested_by, created.recipient.username) == ("admin", pki_admin, "alice")
    assert any(f"Recovery request #{created.pk} made" in m for m in messages_of(response))


def test_employees_and_approvers_cannot_add_in_the_admin(pki, approver, client):
    login(client, "approver")
    assert client.get(f"{CHANGELIST}add/").status_code == 403


def test_agent_completion_page_only_for_agents_and_approved_requests(pki, issued, alice, approver, agent_user, agent_p12, client):
    request = recovery_request_create(requested_by=alice, reason="lost", serial=issued.serial)
    login(client, "approver")
    assert client.get(f"{CHANGELIST}{request.pk}/complete/").status_code == 403
    client.logout()
    login(client, "agent")
    page = client.get(f"{CHANGELIST}{request.pk}/complete/")
    assert page.status_code == 200 and b"Only an approved request can be completed" in page.content
    from django.core.files.uploadedfile import SimpleUploadedFile

    page = client.post(
        f"{CHANGELIST}{request.pk}/complete/",
        {"agent_pkcs12": SimpleUploadedFile("a.p12", agent_p12), "passphrase": AGENT_PASSPHRASE},
    )
    assert page.status_code == 200 and b"is pending, not approved" in page.content
    assert AGENT_PASSPHRASE.encode() not in page.content  # the password field is not echoed back
    assert client.get(f"{CHANGELIST}999/complete/").status_code == 302  # the admin's "does not exist" redirect


def test_deactivate_agent_action_with_confirmation(pki, pki_admin, client, tmp_path):
    from django.core.management import call_command

    passphrase = tmp_path / "p"
    passphrase.write_text("x" * 16)
    call_command("create_kra", "Replacement", "--out", str(tmp_path / "r.p12"), "--passphrase-file", str(passphrase))
    old, new = pki["agent"], KeyRecoveryAgent.objects.get(name="Replacement")
    login(client, "pkiadmin")
    url = "/admin/escrow/keyrecoveryagent/"
    data = {"action": "deactivate_selected", "_selected_action": [old.pk, new.pk]}
    page = client.post(url, data)
    assert page.status_code == 200 and b"rewrap_escrow" in page.content
    old.refresh_from_db()
    assert old.is_active
    messages = messages_of(client.post(url, {**data, "confirm": "yes"}, follow=True))
    assert any(m.startswith(f"Deactivated {old.name}: new escrow is no longer encrypted to it") for m in messages)
    assert any(m.startswith("Could not deactivate Replacement") and "only active" in m for m in messages)
    old.refresh_from_db()
    new.refresh_from_db()
    assert not old.is_active and new.is_active
    # The form cannot flip is_active behind the service's back.
    client.post(f"{url}{old.pk}/change/", {"is_active": "on", "name": "x"})
    old.refresh_from_db()
    assert not old.is_active and old.name == "Test Key Recovery Agent"
