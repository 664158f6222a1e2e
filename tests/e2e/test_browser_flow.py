"""End to end in a real browser: request, approval in the admin, PKCS#12 pickup, isolation.

Debian's chromium, driven by Playwright's sync API, against pytest-django's live server.
Three people use three browser contexts (their own cookies): alice (an employee),
approver (in the Approvers group, staff) and bob (another employee).
E2E_SCREENSHOT_DIR=DIR keeps a copy of the screenshot of alice's home page there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from portal_testing import PASSWORD, require_tool

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000
PKCS12_PASSPHRASE = "e2e correct horse battery staple"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser(live_server):
    """A headless Chromium for the tests of one module (each test opens contexts of its own).

    Started once per module, not per test: Playwright's driver and Chromium take seconds to start.
    Not once per session: Playwright's sync API keeps an asyncio loop in this thread, and Django
    must be told that this is fine (DJANGO_ALLOW_ASYNC_UNSAFE) only while browser tests run.
    """
    executable = CHROMIUM if Path(CHROMIUM).exists() else require_tool("chromium")
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as monkeypatch, sync_playwright() as playwright:
        # The ORM calls the tests make between browser steps would otherwise raise SynchronousOnlyOperation.
        monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            # The ORM connection the tests used while Playwright's loop ran is not the one the
            # final teardown closes; left open, PostgreSQL cannot drop the test database.
            from django.db import connections

            connections.close_all()


def new_page(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url, accept_downloads=True, viewport={"width": 1200, "height": 900}
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def portal_login(page, username: str, password: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    assert urlsplit(page.url).path == "/", page.url  # home, not the login form again


def admin_login(page, username: str, password: str) -> None:
    page.goto("/admin/")
    assert "/admin/login/" in page.url
    page.get_by_label("Username:").fill(username)
    page.get_by_label("Password:").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/admin/$"))


def admin_run_action(page, request_pk: int, action_label: str) -> None:
    """Tick one row of the changelist, choose the action, press Go."""
    page.locator(f'input.action-select[value="{request_pk}"]').check()
    page.locator("select[name=action]").select_option(label=action_label)
    with page.expect_navigation():
        page.get_by_role("button", name="Go").click()


def pem_blocks(text: str, kind: str) -> list[bytes]:
    pattern = rf"-----BEGIN {kind}-----.+?-----END {kind}-----"
    return [block.encode() for block in re.findall(pattern, text, flags=re.DOTALL)]


def rfc822_names(certificate: x509.Certificate) -> list[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.RFC822Name)


def public_der(key) -> bytes:
    """SubjectPublicKeyInfo DER of a public key, or of a private key's public half."""
    if hasattr(key, "private_bytes"):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_request_approve_download_in_a_browser(browser, live_server, pki, alice, bob, approver, tmp_path):
    from playwright.sync_api import expect

    from enrollment.models import Certificate, CertificateRequest
    from enrollment.services.requests import certificate_request_create

    password = PASSWORD
    # The fixtures' rows are there for the live server (transactional database).
    assert pki["issuing"].pk and alice.employee.pk and approver.groups.filter(name="Approvers").exists()
    assert approver.has_perm("enrollment.approve_certificaterequest")

    # 1. alice asks for an ECDSA P-256, sponsor-validated certificate.
    alice_page = new_page(browser, live_server)
    portal_login(alice_page, "alice", password)
    expect(alice_page.get_by_role("heading", name="My certificates")).to_be_visible()
    expect(alice_page.get_by_text("You have no certificate yet.")).to_be_visible()
    # Not staff: no way into the administration from her pages.
    expect(alice_page.get_by_role("link", name="Administration")).to_have_count(0)
    alice_page.get_by_label("Key type").select_option(value="ec-p256")
    alice_page.get_by_label("Certificate type").select_option(label="Sponsor-validated (strict)")
    with alice_page.expect_navigation():  # the POST is done (and its redirect followed) before the ORM looks
        alice_page.get_by_role("button", name="Request certificate").click()

    alice_request = CertificateRequest.objects.get(employee=alice.employee)
    assert (alice_request.key_type, alice_request.certificate_type) == ("ec-p256", "sponsor-strict")
    expect(alice_page.locator(".messages li.success")).to_have_text(
        f"Request #{alice_request.pk} submitted. An approver will review it."
    )
    expect(alice_page.locator(f'tr[data-request="{alice_request.pk}"] td.state')).to_have_text("pending")
    # The home says what she waits for, and offers no second request while this one is pending.
    waiting = alice_page.locator(f'[data-pending-request="{alice_request.pk}"]')
    expect(waiting.get_by_role("heading", name="Waiting for approval")).to_be_visible()
    expect(alice_page.get_by_role("button", name="Request certificate")).to_have_count(0)

    # The approver's own request, which he must not be able to approve himself.
    own_request = certificate_request_create(employee=approver.employee, submitted_by=approver)

    # 2. approver approves alice's request in the admin.
    admin_page = new_page(browser, live_server)
    admin_login(admin_page, "approver", password)
    admin_page.get_by_role("link", name="Certificate requests").click()
    admin_page.wait_for_url(re.compile(r"/admin/enrollment/certificaterequest/"))
    rows = admin_page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)  # the queue: pending requests by default
    admin_page.locator("#changelist-filter").get_by_role("link", name="Pending", exact=True).click()
    admin_page.wait_for_url(re.compile(r"state__exact=pending"))
    expect(rows).to_have_count(2)

    with admin_page.expect_navigation():  # the row's Approve button
        rows.filter(has=admin_page.locator(f'input.action-select[value="{alice_request.pk}"]')).get_by_role(
            "button", name="Approve"
        ).click()
    alice_request.refresh_from_db()
    assert alice_request.state == "issued", alice_request.reason
    serial = alice_request.certificate.serial
    expect(admin_page.locator("ul.messagelist li.success")).to_have_text(
        f"Request #{alice_request.pk} approved; certificate {serial} issued."
    )
    assert "state__exact=pending" in admin_page.url  # the filter is kept
    expect(rows).to_have_count(1)  # only his own request is still pending

    # 3. Separation of duties: his own request cannot be approved by him, said before he tries; the
    # bulk action (a way around the missing button) is refused by the service all the same.
    own_row = rows.filter(has=admin_page.locator(f'input.action-select[value="{own_request.pk}"]'))
    expect(own_row.locator(".duty-conflict")).to_have_text("You cannot approve this: it is your own request.")
    expect(own_row.get_by_role("button", name="Approve")).to_have_count(0)
    admin_run_action(admin_page, own_request.pk, "Approve selected requests (issues the certificates)")
    error = admin_page.locator("ul.messagelist li.error")
    expect(error).to_have_count(1)
    expect(error).to_contain_text(f"Request #{own_request.pk} not approved")
    expect(error).to_contain_text("separation of duties")
    expect(admin_page.locator("ul.messagelist li.success")).to_have_count(0)
    own_request.refresh_from_db()
    assert own_request.state == "pending" and own_request.decided_by is None
    assert not Certificate.objects.filter(employee=approver.employee).exists()

    # 4. alice picks up key and certificate as PKCS#12.
    alice_page.reload()
    row = alice_page.locator(f'article[data-serial="{serial}"]')
    expect(row.locator(".state")).to_have_text("valid")
    expect(row.get_by_role("heading", name="Ready to download")).to_be_visible()
    expect(alice_page.locator(f'tr[data-request="{alice_request.pk}"] td.state')).to_have_text("issued")
    row.get_by_role("link", name="Download key and certificate").click()
    alice_page.wait_for_url(re.compile(rf"/certificates/{serial}/pkcs12/$"))
    expect(alice_page.get_by_role("heading", name="Download key and certificate")).to_be_visible()

    downloads = []
    alice_page.on("download", lambda download: downloads.append(download))
    alice_page.get_by_label("Passphrase", exact=True).fill(PKCS12_PASSPHRASE)
    alice_page.get_by_label("Passphrase (again)").fill(PKCS12_PASSPHRASE + " typo")
    alice_page.get_by_role("radio", name=re.compile(r"^Compatible \(3DES")).check()
    with alice_page.expect_navigation():
        alice_page.get_by_role("button", name="Download PKCS#12").click()
    expect(alice_page.get_by_text("The two passphrases differ.")).to_be_visible()
    assert downloads == []
    # The choice of format survives the error; the passphrases (password fields) do not.
    expect(alice_page.get_by_role("radio", name=re.compile(r"^Compatible \(3DES"))).to_be_checked()
    expect(alice_page.get_by_label("Passphrase", exact=True)).to_have_value("")

    alice_page.get_by_label("Passphrase", exact=True).fill(PKCS12_PASSPHRASE)
    alice_page.get_by_label("Passphrase (again)").fill(PKCS12_PASSPHRASE)
    alice_page.get_by_role("radio", name=re.compile(r"^Compatible \(3DES")).check()
    with (
        alice_page.expect_download() as download_info,
        alice_page.expect_response(lambda response: response.request.method == "POST") as response_info,
    ):
        alice_page.get_by_role("button", name="Download PKCS#12").click()
    download = download_info.value
    headers = response_info.value.headers
    assert headers["content-type"] == "application/x-pkcs12"
    assert headers["content-disposition"] == 'attachment; filename="alice@example.org.p12"'
    assert "no-store" in headers["cache-control"].split(", ")
    assert download.failure() is None
    assert download.suggested_filename == "alice@example.org.p12"
    p12_path = tmp_path / download.suggested_filename
    download.save_as(p12_path)
    data = p12_path.read_bytes()
    assert data
    assert Certificate.objects.get(serial=serial).pickup.download_count == 1  # the refused try did not count

    key, certificate, chain = pkcs12.load_key_and_certificates(data, PKCS12_PASSPHRASE.encode())
    assert format(certificate.serial_number, "x") == serial
    assert rfc822_names(certificate) == ["alice@example.org"]
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert public_der(key) == public_der(certificate.public_key())
    assert {c.subject.rfc4514_string() for c in chain} == {
        pki["material"].issuing.subject.rfc4514_string(),
        pki["material"].root.subject.rfc4514_string(),
    }

    result = subprocess.run(
        [require_tool("openssl"), "pkcs12", "-in", str(p12_path), "-passin", f"pass:{PKCS12_PASSPHRASE}", "-nodes"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    openssl_keys = pem_blocks(result.stdout, "PRIVATE KEY")
    openssl_certificates = [x509.load_pem_x509_certificate(pem) for pem in pem_blocks(result.stdout, "CERTIFICATE")]
    assert len(openssl_keys) == 1 and len(openssl_certificates) == 3
    openssl_key = serialization.load_pem_private_key(openssl_keys[0], password=None)
    leaf = [c for c in openssl_certificates if public_der(c.public_key()) == public_der(openssl_key)]
    assert len(leaf) == 1, "the key in the file matches exactly one certificate"
    assert leaf[0] == certificate
    assert rfc822_names(leaf[0]) == ["alice@example.org"]

    # 5. A screenshot of her home page with the issued certificate.
    alice_page.goto("/")
    card = alice_page.locator(f'article[data-serial="{serial}"]')
    expect(card.get_by_role("heading", name="Next: install it on your device")).to_be_visible()
    expect(card.get_by_role("link", name=re.compile(r"^Install on "))).to_be_visible()
    screenshot = tmp_path / "home-with-certificate.png"
    alice_page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 0
    if os.environ.get("E2E_SCREENSHOT_DIR"):
        shutil.copy(screenshot, Path(os.environ["E2E_SCREENSHOT_DIR"]) / screenshot.name)

    # 6. bob cannot reach alice's pickup page: a 404 as if there were no such certificate.
    bob_page = new_page(browser, live_server)
    portal_login(bob_page, "bob", password)
    expect(bob_page.get_by_role("heading", name="My certificates")).to_be_visible()
    response = bob_page.goto(f"/certificates/{serial}/pkcs12/")
    assert response is not None and response.status == 404
    expect(bob_page.get_by_role("button", name="Download PKCS#12")).to_have_count(0)
    assert serial not in bob_page.content()
    # Nor her certificate files, with his session cookie.
    for suffix in ("pem", "cer"):
        assert bob_page.request.get(f"{live_server.url}/certificates/{serial}.{suffix}").status == 404
