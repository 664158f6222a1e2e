"""The employee's key download (issue 14, findings 3 and 4): the right file first for the device,
no one stranded by a wrong format, and messages that promise only the recovery that exists."""

from __future__ import annotations

import plistlib
import re
import subprocess
import time
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from django.utils import timezone
from portal_testing import PASSWORD, require_tool

from audit.models import AuditEvent
from core.sessions import AUTHENTICATED_AT
from enrollment.services.requests import certificate_request_approve, certificate_request_create
from escrow.models import EscrowRecord, PickupCopy
from escrow.services.pickups import SIGNING_KEY_REDOWNLOAD_HOURS

PASSPHRASE = "correct horse battery staple"

UA = {
    "iphone": "Mozilla/5.0 (iPhone; CPU iPhone OS 16_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1",
    "ipad": "Mozilla/5.0 (iPad; CPU OS 15_8 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "mac": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36 Edg/126.0",
    "windows-7": "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0",
    "android": "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36",
    "linux": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "thunderbird": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.3.0",
    "none": "",
}

# device -> the file offered first (and chosen) on the download page
EXPECTED = {
    "iphone": "mobileconfig",
    "ipad": "mobileconfig",
    "mac": "compatible",
    "windows": "modern",
    "windows-7": "compatible",
    "android": "compatible",
    "linux": "compatible",  # KMail/Kleopatra import through gpgsm, which cannot read "modern"
    "thunderbird": "modern",
    "none": "compatible",
}


@pytest.fixture
def alice_client(client, alice):
    assert client.login(username="alice", password=PASSWORD)
    return client


@pytest.fixture
def pair(pki, alice, approver, settings):
    """A key separation pair: a signing-only certificate (key not escrowed) and an encryption one (escrowed)."""
    settings.PORTAL_KEY_SEPARATION = True
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    request = certificate_request_approve(request_id=request.pk, approver=approver)
    assert request.state == "issued", request.reason
    return {c.usage: c for c in request.certificates.all()}


def _url(certificate) -> str:
    return f"/certificates/{certificate.serial}/pkcs12/"


def _download(client, certificate, fmt: str, *, user_agent: str = "", **extra):
    data = {"passphrase": PASSPHRASE, "passphrase_again": PASSPHRASE, "format": fmt, **extra}
    return client.post(_url(certificate), data, HTTP_USER_AGENT=user_agent)


def _radio_values(page: str) -> list[str]:
    return re.findall(r'<input type="radio" name="format" value="([^"]+)"', page)


def _checked(page: str) -> str:
    checked = re.findall(r'<input type="radio" name="format" value="([^"]+)"[^>]*checked', page)
    assert len(checked) == 1, checked
    return checked[0]


# --- The right file first, per device ---------------------------------------------------------------


@pytest.mark.parametrize("device", sorted(EXPECTED))
def test_the_download_page_offers_the_right_file_first_for_the_device(pki, issued, alice_client, device):
    page = alice_client.get(_url(issued), HTTP_USER_AGENT=UA[device]).content.decode()

    assert _radio_values(page)[0] == EXPECTED[device]
    assert _checked(page) == EXPECTED[device]
    assert "recommended for your device" in page
    # Every choice is explained per client, whatever the device.
    for client_name in ("iPhone or iPad", "Mac", "Windows 10/11", "Android", "KMail/Kleopatra", "Thunderbird"):
        assert client_name in page


def test_the_help_no_longer_calls_compatible_a_fallback_for_old_devices(pki, issued, alice_client):
    page = alice_client.get(_url(issued), HTTP_USER_AGENT=UA["linux"]).content.decode()
    assert "only if your device says the password is wrong" not in page
    assert "gpgsm" in page


# --- A signing-only key cannot be lost to a wrong format ----------------------------------------------


def test_a_signing_only_key_downloads_again_in_the_other_format(pki, pair, alice_client, alice):
    signing = pair["signing"]
    first = _download(alice_client, signing, "modern")
    assert first.status_code == 200 and first["Content-Type"] == "application/x-pkcs12"
    # "The device says the password is wrong": the employee takes the compatible file. Old code: a dead end.
    second = _download(alice_client, signing, "compatible")
    assert second.status_code == 200 and second["Content-Type"] == "application/x-pkcs12", second.content[:400]
    assert pkcs12.load_pkcs12(second.content, PASSPHRASE.encode()).key.public_key() == signing.x509.public_key()
    third = _download(alice_client, signing, "mobileconfig")
    assert third.status_code == 200 and third["Content-Type"] == "application/x-apple-aspen-config"

    pickup = PickupCopy.objects.get(certificate=signing)
    assert pickup.download_count == 3
    # The first download shortened the window of the unescrowed key to SIGNING_KEY_REDOWNLOAD_HOURS.
    assert pickup.expires_at <= timezone.now() + timedelta(hours=SIGNING_KEY_REDOWNLOAD_HOURS)
    assert pickup.expires_at > timezone.now() + timedelta(hours=SIGNING_KEY_REDOWNLOAD_HOURS - 1)
    assert not EscrowRecord.objects.filter(certificate=signing).exists()
    events = AuditEvent.objects.filter(action="certificate.pkcs12_downloaded", object_id=str(signing.pk))
    assert [e.details["format"] for e in events.order_by("id")] == ["modern", "compatible", "mobileconfig"]
    assert all(e.details["key_escrowed"] is False for e in events)


def test_repeat_downloads_do_not_lengthen_a_signing_keys_window(pki, pair, alice_client):
    signing = pair["signing"]
    PickupCopy.objects.filter(certificate=signing).update(expires_at=timezone.now() + timedelta(hours=2))
    assert _download(alice_client, signing, "compatible").status_code == 200
    assert PickupCopy.objects.get(certificate=signing).expires_at <= timezone.now() + timedelta(hours=2)


def _main(html: str) -> str:
    """The page's own content: without the header's menu, which links "Key recovery" on every page."""
    return html.split('<main id="main"', 1)[1]


def test_the_download_page_states_the_signing_keys_rules(pki, pair, alice_client):
    page = _main(alice_client.get(_url(pair["signing"])).content.decode())
    assert "signing-only key is not escrowed" in page
    assert f"{SIGNING_KEY_REDOWNLOAD_HOURS} hours" in page
    assert "revoke this certificate and request a new one" in page
    assert "key recovery" not in page.lower().replace("key recovery agents", "")


def test_after_the_window_a_signing_key_is_a_410_that_promises_no_recovery(pki, pair, alice_client):
    signing = pair["signing"]
    assert _download(alice_client, signing, "modern").status_code == 200
    PickupCopy.objects.filter(certificate=signing).update(expires_at=timezone.now() - timedelta(seconds=1))

    for response in (alice_client.get(_url(signing)), _download(alice_client, signing, "compatible")):
        assert response.status_code == 410
        text = response.content.decode()
        assert "never escrowed, so no one can recover it" in text
        assert "revoke this certificate and request a new one" in text
        assert "ask for a key recovery" not in text.lower()


def test_after_the_window_an_escrowed_key_is_a_410_that_points_to_recovery(pki, pair, alice_client):
    encryption = pair["encryption"]
    PickupCopy.objects.filter(certificate=encryption).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _download(alice_client, encryption, "compatible")
    assert response.status_code == 410
    text = response.content.decode()
    assert "The key is escrowed" in text and "ask for a key recovery" in text
    assert "revoke this certificate" not in text


def test_an_escrowed_key_downloads_all_window_long(pki, issued, alice_client):
    expires_at = issued.pickup.expires_at
    for fmt in ("compatible", "modern", "mobileconfig", "compatible"):
        assert _download(alice_client, issued, fmt).status_code == 200
    pickup = PickupCopy.objects.get(certificate=issued)
    assert pickup.download_count == 4 and pickup.expires_at == expires_at


def test_a_wrong_format_or_short_passphrase_counts_no_download(pki, issued, alice_client):
    response = _download(alice_client, issued, "pem")
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    response = alice_client.post(_url(issued), {"passphrase": "short", "passphrase_again": "short", "format": "modern"})
    assert response.status_code == 200
    assert PickupCopy.objects.get(certificate=issued).download_count == 0


# --- The home page says exactly which keys are escrowed ----------------------------------------------


def test_home_page_tells_escrowed_and_unescrowed_keys_apart(pki, pair, alice_client):
    PickupCopy.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    page = alice_client.get("/").content.decode()

    def row(certificate) -> str:
        match = re.search(rf'<article [^>]*data-serial="{certificate.serial}"[^>]*>(.*?)</article>', page, re.S)
        assert match, certificate.serial
        return match.group(1)

    signing, encryption = row(pair["signing"]), row(pair["encryption"])
    assert "not escrowed, so it cannot be recovered" in signing and "revoke this certificate" in signing
    assert "key recovery" not in signing
    assert "The key is escrowed" in encryption and "key recovery" in encryption
    assert "Your private key is kept in escrow" not in page
    notice = re.search(r'<p id="escrow-notice">(.*?)</p>', page, re.S).group(1)
    assert "dual-use and encryption certificates are escrowed" in notice
    assert "Signing-only keys" in notice and "never escrowed" in notice


def test_home_page_for_a_dual_use_key_after_the_window(pki, issued, alice_client):
    PickupCopy.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    page = alice_client.get("/").content.decode()
    assert "The key is escrowed: if you lost it, ask for a" in page
    assert "cannot be recovered" not in page


# --- The Apple configuration profile ------------------------------------------------------------------


@pytest.mark.parametrize("include_passphrase", [False, True])
def test_the_configuration_profile(pki, issued, alice_client, tmp_path, include_passphrase):
    extra = {"include_passphrase": "on"} if include_passphrase else {}
    response = _download(alice_client, issued, "mobileconfig", user_agent=UA["iphone"], **extra)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-apple-aspen-config"
    assert response["Content-Disposition"] == 'attachment; filename="alice@example.org.mobileconfig"'
    assert "no-store" in response["Cache-Control"]
    profile = plistlib.loads(response.content)
    assert profile["PayloadType"] == "Configuration" and profile["PayloadVersion"] == 1
    assert profile["PayloadIdentifier"].startswith("org.example.pki.smime.")
    assert profile["PayloadOrganization"] and profile["PayloadDisplayName"]
    payloads = {p["PayloadType"]: p for p in profile["PayloadContent"]}
    assert set(payloads) == {"com.apple.security.pkcs12", "com.apple.security.pkcs1", "com.apple.security.root"}
    uuids = [profile["PayloadUUID"], *(p["PayloadUUID"] for p in profile["PayloadContent"])]
    assert len(set(uuids)) == len(uuids)
    for payload in profile["PayloadContent"]:
        assert payload["PayloadIdentifier"].startswith(profile["PayloadIdentifier"] + ".")
        assert payload["PayloadVersion"] == 1

    identity = payloads["com.apple.security.pkcs12"]
    assert ("Password" in identity) is include_passphrase
    if include_passphrase:
        assert identity["Password"] == PASSPHRASE
    bundle = pkcs12.load_pkcs12(identity["PayloadContent"], PASSPHRASE.encode())
    assert bundle.cert.certificate == issued.x509
    assert bundle.key.public_key() == issued.x509.public_key()
    # The root payload is the portal's root CA, the pkcs1 payload its issuing CA.
    assert payloads["com.apple.security.root"]["PayloadContent"] == pki["root"].certificate_der
    assert payloads["com.apple.security.pkcs1"]["PayloadContent"] == pki["issuing"].certificate_der
    # The PKCS#12 inside is the compatible one (3DES, SHA-1 MAC): what Apple's importers read.
    path = tmp_path / "identity.p12"
    path.write_bytes(identity["PayloadContent"])
    info = subprocess.run(
        [require_tool("openssl"), "pkcs12", "-in", str(path), "-passin", f"pass:{PASSPHRASE}", "-info", "-noout"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "MAC: sha1" in info.stderr + info.stdout
    assert "pbeWithSHA1And3-KeyTripleDES-CBC" in info.stderr + info.stdout
    assert "PBES2" not in info.stderr + info.stdout
    event = AuditEvent.objects.get(action="certificate.pkcs12_downloaded", object_id=str(issued.pk))
    assert event.details["format"] == "mobileconfig"
    assert event.details["passphrase_in_profile"] is include_passphrase


def test_a_profile_downloaded_again_replaces_the_installed_one(pki, issued, alice_client):
    first = plistlib.loads(_download(alice_client, issued, "mobileconfig").content)
    second = plistlib.loads(_download(alice_client, issued, "mobileconfig").content)
    assert first["PayloadIdentifier"] == second["PayloadIdentifier"]
    assert first["PayloadUUID"] == second["PayloadUUID"]


# --- Fresh authentication before key release -------------------------------------------------------


def test_a_stale_password_is_asked_again_before_any_download(pki, pair, alice_client, settings):
    session = alice_client.session
    session[AUTHENTICATED_AT] = int(time.time()) - settings.PORTAL_REAUTH_MINUTES * 60 - 5
    session.save()
    for response in (
        alice_client.get(_url(pair["signing"])),
        _download(alice_client, pair["signing"], "compatible"),
        _download(alice_client, pair["signing"], "mobileconfig"),
    ):
        assert response.status_code == 302 and response["Location"].startswith("/reauthenticate/?next=")
    assert PickupCopy.objects.get(certificate=pair["signing"]).download_count == 0
