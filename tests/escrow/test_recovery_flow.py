"""Full key recoveries: requested, approved by two approvers, completed by an agent in the admin
(upload) or offline (`recover_key`), downloaded by the recipient; the recovered key is the
certificate's key. The key history bundle and the mail to the owner."""

from __future__ import annotations

import io
import subprocess
import zipfile

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from portal_testing import require_tool
from test_recovery_support import (  # noqa: F401 - fixtures
    AGENT_PASSPHRASE,
    DOWNLOAD_PASSPHRASE,
    agent_p12,
    agent_user,
    approved_recovery,
    login,
    messages_of,
    spki,
)

from audit.models import AuditEvent
from enrollment.pki.pkcs12 import load_pkcs12
from enrollment.services.requests import certificate_request_approve, certificate_request_create
from escrow.models import RecoveryRequest
from escrow.services.pickups import recovery_pkcs12_export
from escrow.services.recovery import recovery_request_approve, recovery_request_complete, recovery_request_create

CHANGELIST = "/admin/escrow/recoveryrequest/"


def _admin_action(client, action: str, pk: int, **extra):
    data = {"action": action, "_selected_action": [pk]}
    first = client.post(CHANGELIST, data)
    assert first.status_code == 200 and b'name="confirm"' in first.content  # the confirmation page
    return client.post(CHANGELIST, {**data, "confirm": "yes", **extra}, follow=True)


def test_full_recovery_through_the_admin_and_the_self_service_page(
    pki, issued, alice, approver, approver2, agent_user, agent_p12, client, tmp_path
):
    request = recovery_request_create(requested_by=alice, reason="Laptop stolen", serial=issued.serial)
    assert request.status == "pending" and request.required_approvals == 2 and request.purpose == "own-key"

    login(client, "approver")
    response = _admin_action(client, "approve_selected", request.pk, comment="Called alice back")
    assert f"Approval 1 of 2 recorded; recovery #{request.pk} waits for a second approver." in messages_of(response)
    client.logout()
    login(client, "approver2")
    response = _admin_action(client, "approve_selected", request.pk, comment="Ticket 4711")
    assert any(
        m.startswith(f"Approval 2 of 2 recorded; recovery #{request.pk} is approved: a key recovery agent can complete it")
        for m in messages_of(response)
    )
    request.refresh_from_db()
    assert request.status == "approved"
    assert [(d.approver.username, d.comment) for d in request.decisions.all()] == [
        ("approver", "Called alice back"), ("approver2", "Ticket 4711"),
    ]
    client.logout()

    login(client, "agent")
    change_page = client.get(f"{CHANGELIST}{request.pk}/change/")
    assert b"Complete with an agent key" in change_page.content
    complete_url = f"{CHANGELIST}{request.pk}/complete/"
    wrong = client.post(
        complete_url, {"agent_pkcs12": _upload(agent_p12), "passphrase": "not the passphrase"}
    )
    assert wrong.status_code == 200 and b"cannot be opened" in wrong.content
    response = client.post(
        complete_url, {"agent_pkcs12": _upload(agent_p12), "passphrase": AGENT_PASSPHRASE}, follow=True
    )
    assert any("completed: 1 recovered key waits for alice on their self-service page until" in m for m in messages_of(response))
    request.refresh_from_db()
    assert request.status == "completed" and request.completed_by == agent_user
    page = client.get(f"{CHANGELIST}{request.pk}/change/").content.decode()
    assert f"{issued.serial} <small>(download until" in page and "0 download(s)" in page
    client.logout()

    login(client, "alice")
    home = client.get("/")
    assert b"Recovered keys waiting for you" in home.content
    url = f"/recovery/{request.pk}/pkcs12/{issued.serial}/"
    assert client.get("/recovery/").status_code == 200
    # The serial as openssl prints it (upper case, a leading zero) names the same pickup.
    assert client.get(f"/recovery/{request.pk}/pkcs12/0{issued.serial.upper()}/").status_code == 200
    response = client.post(
        url, {"passphrase": DOWNLOAD_PASSPHRASE, "passphrase_again": DOWNLOAD_PASSPHRASE, "format": "modern"}
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/x-pkcs12"
    assert "no-store" in response["Cache-Control"]
    bundle = load_pkcs12(response.content, DOWNLOAD_PASSPHRASE)
    assert spki(bundle.key) == spki(issued.x509)  # the recovered key is the certificate's key
    assert bundle.cert.certificate == issued.x509

    # openssl reads the bundle with the recipient's passphrase and finds the matching key.
    path = tmp_path / "recovered.p12"
    path.write_bytes(response.content)
    result = subprocess.run(
        [require_tool("openssl"), "pkcs12", "-in", str(path), "-nodes", "-passin", f"pass:{DOWNLOAD_PASSPHRASE}"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "-----BEGIN PRIVATE KEY-----" in result.stdout and "-----BEGIN CERTIFICATE-----" in result.stdout

    actions = list(
        AuditEvent.objects.filter(object_type="escrow.recoveryrequest", object_id=str(request.pk))
        .order_by("id").values_list("action", "actor_name")
    )
    assert actions == [
        ("recovery.requested", "alice"), ("recovery.approved", "approver"), ("recovery.approved", "approver2"),
        ("recovery.completed", "agent"), ("recovery.downloaded", "alice"),
    ]
    call_command("verify_audit_log")


def _upload(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("agent.p12", data, content_type="application/x-pkcs12")


def test_offline_completion_with_recover_key(pki, approved_recovery, issued, alice, agent_user, agent_p12, tmp_path, capsys):
    p12 = tmp_path / "agent.p12"
    p12.write_bytes(agent_p12)
    passphrase_file = tmp_path / "pass"
    passphrase_file.write_text(AGENT_PASSPHRASE + "\n")

    with pytest.raises(CommandError, match="no portal account; name the agent's account with --user"):
        call_command("recover_key", str(approved_recovery.pk), "--kra-p12", str(p12), "--passphrase-file", str(passphrase_file))
    call_command(
        "recover_key", str(approved_recovery.pk), "--kra-p12", str(p12),
        "--passphrase-file", str(passphrase_file), "--user", "agent",
    )
    assert f"Recovery request #{approved_recovery.pk} completed: 1 key(s) wait for alice" in capsys.readouterr().out

    filename, data = recovery_pkcs12_export(
        user=alice, request_id=approved_recovery.pk, passphrase=DOWNLOAD_PASSPHRASE
    )
    assert spki(load_pkcs12(data, DOWNLOAD_PASSPHRASE).key) == spki(issued.x509)
    assert filename == f"alice@example.org-{issued.serial}.p12"

    with pytest.raises(CommandError, match=r"is completed, not approved"):
        call_command(
            "recover_key", str(approved_recovery.pk), "--kra-p12", str(p12),
            "--passphrase-file", str(passphrase_file), "--user", "agent",
        )


def test_recover_key_failures_are_one_line(pki, approved_recovery, agent_user, agent_p12, tmp_path, monkeypatch):
    p12 = tmp_path / "agent.p12"
    p12.write_bytes(agent_p12)
    monkeypatch.setenv("PORTAL_KRA_PASSPHRASE", "wrong passphrase")
    with pytest.raises(CommandError, match="cannot be opened: wrong passphrase"):
        call_command("recover_key", str(approved_recovery.pk), "--kra-p12", str(p12), "--user", "agent")
    monkeypatch.setenv("PORTAL_KRA_PASSPHRASE", AGENT_PASSPHRASE)
    with pytest.raises(CommandError, match="cannot read"):
        call_command("recover_key", str(approved_recovery.pk), "--kra-p12", str(tmp_path / "missing.p12"), "--user", "agent")
    with pytest.raises(CommandError, match="no recovery request #999"):
        call_command("recover_key", "999", "--kra-p12", str(p12), "--user", "agent")
    with pytest.raises(CommandError, match="Only key recovery agents"):
        call_command("recover_key", str(approved_recovery.pk), "--kra-p12", str(p12), "--user", "alice")
    assert RecoveryRequest.objects.get(pk=approved_recovery.pk).status == "approved"


def test_key_history_bundle_holds_every_escrowed_key(pki, issued, alice, approver, approver2, agent_user, agent_p12, client):

    second = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    second = certificate_request_approve(request_id=second.pk, approver=approver).certificate
    request = recovery_request_create(
        requested_by=alice, reason="Reading mail from last year", employee_username="alice"
    )
    assert request.certificate is None and str(request).endswith("all escrowed keys of alice@example.org")
    for who in (approver, approver2):
        recovery_request_approve(request_id=request.pk, approver=who)
    recovery_request_complete(
        request_id=request.pk, agent=agent_user, agent_pkcs12=agent_p12, passphrase=AGENT_PASSPHRASE
    )

    login(client, "alice")
    page = client.get(f"/recovery/{request.pk}/history/")
    assert page.status_code == 200 and issued.serial.encode() in page.content and second.serial.encode() in page.content
    response = client.post(
        f"/recovery/{request.pk}/history/",
        {"passphrase": DOWNLOAD_PASSPHRASE, "passphrase_again": DOWNLOAD_PASSPHRASE, "format": "compatible"},
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        keys = {name: load_pkcs12(archive.read(name), DOWNLOAD_PASSPHRASE) for name in archive.namelist()}
    assert len(keys) == 2
    assert {spki(bundle.key) for bundle in keys.values()} == {spki(issued.x509), spki(second.x509)}

    # A single download from a several-key recovery must name the certificate.
    with pytest.raises(Exception, match="holds 2 keys"):
        recovery_pkcs12_export(user=alice, request_id=request.pk, passphrase=DOWNLOAD_PASSPHRASE)
    _, data = recovery_pkcs12_export(
        user=alice, request_id=request.pk, passphrase=DOWNLOAD_PASSPHRASE, serial=second.serial
    )
    assert spki(load_pkcs12(data, DOWNLOAD_PASSPHRASE).key) == spki(second.x509)


def test_recovered_key_pickup_expires(pki, approved_recovery, alice, agent_user, agent_p12, client):
    from datetime import timedelta

    from django.utils import timezone

    from core.exceptions import PickupUnavailable

    recovery_request_complete(
        request_id=approved_recovery.pk, agent=agent_user, agent_pkcs12=agent_p12, passphrase=AGENT_PASSPHRASE
    )
    approved_recovery.pickups.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(PickupUnavailable, match="no longer available"):
        recovery_pkcs12_export(user=alice, request_id=approved_recovery.pk, passphrase=DOWNLOAD_PASSPHRASE)
    call_command("purge_expired_pickups")
    pickup = approved_recovery.pickups.get()
    assert bytes(pickup.sealed_key) == b"" and pickup.certificate == approved_recovery.certificate
    with pytest.raises(PickupUnavailable, match="no longer available"):
        recovery_pkcs12_export(user=alice, request_id=approved_recovery.pk, passphrase=DOWNLOAD_PASSPHRASE)
    login(client, "alice")
    assert b"Recovered keys waiting for you" not in client.get("/").content
    serial = approved_recovery.certificate.serial
    assert client.get(f"/recovery/{approved_recovery.pk}/pkcs12/{serial}/").status_code == 404


def test_only_the_recipient_downloads(pki, approved_recovery, alice, bob, approver, agent_user, agent_p12, client):
    from core.exceptions import NotFound

    recovery_request_complete(
        request_id=approved_recovery.pk, agent=agent_user, agent_pkcs12=agent_p12, passphrase=AGENT_PASSPHRASE
    )
    for other in (bob, approver, agent_user):
        with pytest.raises(NotFound):
            recovery_pkcs12_export(user=other, request_id=approved_recovery.pk, passphrase=DOWNLOAD_PASSPHRASE)
    login(client, "bob")
    serial = approved_recovery.certificate.serial
    assert client.get(f"/recovery/{approved_recovery.pk}/pkcs12/{serial}/").status_code == 404
    assert client.get(f"/recovery/{approved_recovery.pk}/history/").status_code == 404


def test_the_owner_is_told_by_mail(
    pki, alice, approver, approver2, agent_user, agent_p12, django_capture_on_commit_callbacks
):

    def to_alice():
        return [m for m in mail.outbox if m.to == ["alice@example.org"]]

    with django_capture_on_commit_callbacks(execute=True):
        created = certificate_request_create(employee=alice.employee, submitted_by=alice)
        certificate = certificate_request_approve(request_id=created.pk, approver=approver).certificate
    (ready,) = to_alice()
    assert "ready" in ready.subject and certificate.serial in ready.body and "escrowed" in ready.body

    with django_capture_on_commit_callbacks(execute=True):
        request = recovery_request_create(requested_by=alice, reason="Phone lost", serial=certificate.serial)
    requested = to_alice()[-1]
    assert "requested" in requested.subject and "Phone lost" in requested.body

    for who in (approver, approver2):
        recovery_request_approve(request_id=request.pk, approver=who)
    with django_capture_on_commit_callbacks(execute=True):
        recovery_request_complete(
            request_id=request.pk, agent=agent_user, agent_pkcs12=agent_p12, passphrase=AGENT_PASSPHRASE
        )
    assert "recovered" in to_alice()[-1].subject or "completed" in to_alice()[-1].subject
    assert AGENT_PASSPHRASE not in "".join(m.body for m in mail.outbox)


def test_a_failed_completion_sends_no_mail(pki, approved_recovery, agent_user, django_capture_on_commit_callbacks):
    from django.core.exceptions import ValidationError

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError):
        recovery_request_complete(
            request_id=approved_recovery.pk, agent=agent_user, agent_pkcs12=b"not a pkcs12", passphrase="x"
        )
    assert mail.outbox == []


def test_employees_ask_for_their_own_key_on_the_self_service_page(pki, issued, alice, bob, client):
    login(client, "alice")
    page = client.get("/recovery/")
    assert page.status_code == 200 and b"Get a lost key back" in page.content and issued.serial.encode() in page.content
    assert b"All my escrowed keys" not in page.content  # one key only: no key-history choice
    response = client.post("/recovery/request/", {"certificate": issued.serial, "reason": "New laptop"}, follow=True)
    created = RecoveryRequest.objects.get()
    assert (created.requested_by, created.recipient, created.purpose) == (alice, alice, "own-key")
    assert any(f"Recovery request #{created.pk} submitted" in m for m in messages_of(response))
    assert f'data-recovery="{created.pk}"'.encode() in response.content
    response = client.post("/recovery/request/", {"certificate": issued.serial, "reason": "again"}, follow=True)
    assert any("is open already" in m for m in messages_of(response))
    response = client.post("/recovery/request/", {"certificate": "ff", "reason": "not mine"}, follow=True)
    assert any("Choose a key" in m for m in messages_of(response))
    client.logout()

    login(client, "bob")  # no escrowed key, and nothing of alice's to see
    page = client.get("/recovery/")
    assert b"Get a lost key back" not in page.content and issued.serial.encode() not in page.content
    response = client.post("/recovery/request/", {"certificate": issued.serial, "reason": "x"}, follow=True)
    assert any("no escrowed key" in m for m in messages_of(response))
    assert RecoveryRequest.objects.count() == 1
