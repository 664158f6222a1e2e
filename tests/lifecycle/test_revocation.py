"""Revocation: who may revoke what, the CRL reissued with the reason, the admin, the page, the command."""

from __future__ import annotations

import subprocess

import pytest
from cryptography import x509
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from portal_testing import PASSWORD

from audit.models import AuditEvent
from core.exceptions import InvalidState, NotAllowed, NotFound
from enrollment.models import Certificate
from enrollment.revocation.services import certificate_revoke, crl_current
from escrow.models import EscrowRecord, PickupCopy


def _crl(ca) -> x509.CertificateRevocationList:
    # The CRL served (a revocation marks the stored one stale; see tests/lifecycle/test_crl_batches.py).
    crl = x509.load_der_x509_crl(crl_current(ca=ca))
    ca.refresh_from_db()
    return crl


def test_approver_revokes_and_the_crl_names_the_serial_with_its_reason(pki, issued, approver):
    ca = pki["issuing"]
    before = ca.crl_number
    certificate = certificate_revoke(
        serial=issued.serial, actor=approver, reason="affiliation_changed", comment="moved to a subsidiary"
    )
    assert (certificate.status, certificate.revocation_reason, certificate.revoked_by) == (
        "revoked", "affiliation_changed", approver,
    )
    crl = _crl(ca)
    assert ca.crl_number == before + 1
    entry = crl.get_revoked_certificate_by_serial_number(int(issued.serial, 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.affiliation_changed
    assert crl.is_signature_valid(ca.certificate.public_key())
    event = AuditEvent.objects.filter(action="certificate.revoked").get()
    assert (event.actor, event.details["reason"], event.details["serial"]) == (approver, "affiliation_changed", issued.serial)
    # The key cannot be picked up any more, but stays escrowed for old mail.
    assert not PickupCopy.objects.filter(certificate=issued).exists()
    assert EscrowRecord.objects.filter(certificate=issued).exists()


def test_unspecified_reason_has_no_reason_code_on_the_crl(pki, issued, approver):
    certificate_revoke(serial=issued.serial, actor=approver, reason="unspecified")
    entry = _crl(pki["issuing"]).get_revoked_certificate_by_serial_number(int(issued.serial, 16))
    with pytest.raises(x509.ExtensionNotFound):
        entry.extensions.get_extension_for_class(x509.CRLReason)


def test_revocation_is_final(pki, issued, approver, approver2):
    certificate_revoke(serial=issued.serial, actor=approver, reason="superseded")
    with pytest.raises(InvalidState, match="final"):
        certificate_revoke(serial=issued.serial, actor=approver2, reason="key_compromise")


def test_owner_may_revoke_for_key_compromise_or_superseded_only(pki, issued, alice):
    with pytest.raises(NotAllowed, match="key_compromise or superseded"):
        certificate_revoke(serial=issued.serial, actor=alice, reason="affiliation_changed")
    certificate = certificate_revoke(serial=issued.serial, actor=alice, reason="key_compromise")
    assert certificate.status == "revoked"


def test_someone_elses_certificate_looks_like_none(pki, issued, bob, auditor):
    for outsider in (bob, auditor):
        with pytest.raises(NotFound):
            certificate_revoke(serial=issued.serial, actor=outsider, reason="key_compromise")
    assert Certificate.objects.get(pk=issued.pk).status == "valid"


@pytest.mark.parametrize("reason", ["", "certificate_hold", "remove_from_crl", "because"])
def test_reasons_outside_the_profile_are_field_errors(pki, issued, approver, reason):
    with pytest.raises(ValidationError) as raised:
        certificate_revoke(serial=issued.serial, actor=approver, reason=reason)
    assert "reason" in raised.value.message_dict


def test_command_revokes_and_refuses_bad_input_in_one_line(pki, issued, capsys):
    with pytest.raises(CommandError, match="No certificate with serial deadbeef"):
        call_command("revoke_certificate", "deadbeef", "--reason", "superseded")
    colon_serial = ":".join(issued.serial[i : i + 2] for i in range(0, len(issued.serial), 2))
    call_command("revoke_certificate", colon_serial, "--reason", "key_compromise", "--comment", "laptop stolen")
    assert f"Revoked {issued.serial}" in capsys.readouterr().out
    assert Certificate.objects.get(pk=issued.pk).revocation_reason == "key_compromise"
    with pytest.raises(CommandError, match="revoked already"):
        call_command("revoke_certificate", issued.serial, "--reason", "key_compromise")


def test_admin_revocation_asks_for_a_reason_then_revokes(pki, issued, approver, client):
    client.force_login(approver)
    url = "/admin/enrollment/certificate/"
    page = client.post(url, {"action": "revoke_selected", "_selected_action": [issued.pk]})
    assert page.status_code == 200 and b"Revocation is final" in page.content
    assert Certificate.objects.get(pk=issued.pk).status == "valid"
    client.post(url, {"action": "revoke_selected", "_selected_action": [issued.pk], "confirm": "yes", "reason": "bogus"})
    assert Certificate.objects.get(pk=issued.pk).status == "valid"
    done = client.post(
        url,
        {"action": "revoke_selected", "_selected_action": [issued.pk], "confirm": "yes", "reason": "privilege_withdrawn"},
        follow=True,
    )
    # The admin capitalizes a message's first letter, so the serial (which may start with a-f) comes later.
    assert f"Revoked {issued.serial} (privilege_withdrawn)" in done.content.decode()
    assert Certificate.objects.get(pk=issued.pk).revocation_reason == "privilege_withdrawn"


def test_auditors_see_certificates_but_cannot_revoke_in_the_admin(pki, issued, auditor, client):
    client.force_login(auditor)
    page = client.get("/admin/enrollment/certificate/")
    assert page.status_code == 200
    assert b"revoke_selected" not in page.content
    client.post(
        "/admin/enrollment/certificate/",
        {"action": "revoke_selected", "_selected_action": [issued.pk], "confirm": "yes", "reason": "superseded"},
    )
    assert Certificate.objects.get(pk=issued.pk).status == "valid"


def test_employee_revokes_own_certificate_on_the_self_service_page(pki, issued, alice, bob, client):
    client.login(username="bob", password=PASSWORD)
    response = client.post(f"/certificates/{issued.serial}/revoke/", {"reason": "key_compromise", "confirm": "on"})
    assert response.status_code == 404
    client.login(username="alice", password=PASSWORD)
    unconfirmed = client.post(f"/certificates/{issued.serial}/revoke/", {"reason": "key_compromise"}, follow=True)
    assert "confirm that revocation is final" in unconfirmed.content.decode()
    assert Certificate.objects.get(pk=issued.pk).status == "valid"
    done = client.post(
        f"/certificates/{issued.serial}/revoke/", {"reason": "key_compromise", "confirm": "on"}, follow=True
    )
    assert f"Certificate {issued.serial} is revoked" in done.content.decode()
    assert Certificate.objects.get(pk=issued.pk).status == "revoked"
    assert b"Key and certificate (PKCS#12)" not in client.get("/").content


def test_refresh_crl_command_reissues_only_what_is_due(pki, capsys):
    call_command("refresh_crl")
    first = capsys.readouterr().out
    assert "issuing-ca: CRL #1" in first and "root-ca: CRL #1" in first
    call_command("refresh_crl")
    assert "No CRL was due." in capsys.readouterr().out
    call_command("refresh_crl", "--force")
    assert "issuing-ca: CRL #2" in capsys.readouterr().out


def test_a_serial_as_openssl_prints_it_finds_the_certificate(pki, issued, approver, client, tmp_path):
    der = tmp_path / "cert.der"
    der.write_bytes(bytes(issued.der))
    printed = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-in", str(der), "-noout", "-serial"],
        capture_output=True, text=True, check=True,
    ).stdout.strip().removeprefix("serial=")
    assert int(printed, 16) == int(issued.serial, 16)
    padded = "0" + issued.serial.upper()  # what openssl prints when the serial needs a leading zero

    for typed in (printed, padded):
        client.force_login(approver)
        assert client.get(f"/api/v1/certificates/{typed}/").json()["serial"] == issued.serial
        with_colons = ":".join(typed[i : i + 2] for i in range(0, len(typed), 2))
        page = client.get("/admin/enrollment/certificate/", {"q": with_colons})
        assert issued.serial in page.content.decode()
    call_command("revoke_certificate", padded, "--reason", "key_compromise")
    assert Certificate.objects.get(pk=issued.pk).status == "revoked"
