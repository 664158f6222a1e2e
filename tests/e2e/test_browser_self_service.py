"""In Chromium, on a 390×844 phone and a 1280 px desktop: every self-service page fits the screen
without horizontal scrolling and axe-core finds no serious or critical violation on it; after a
bad form submit the keyboard focus is on the first error.

The employee's home is visited in each of its states (no request, waiting for approval, ready to
download, downloaded, valid), then the download page, the install pages, key recovery, API
tokens, the password check before a key download, the log-in and the second factor's set-up.
A screenshot of each page goes to E2E_SCREENSHOT_DIR (CI keeps them) or the test's tmp_path.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from axe_testing import assert_accessible, assert_fits, save_screenshot, screenshot_dir
from portal_testing import PASSWORD
from recovery_testing import AGENT_PASSPHRASE, agent_p12, agent_user  # noqa: F401 - fixtures
from test_browser_flow import TIMEOUT_MS, browser, portal_login  # noqa: F401 - the fixture is reused

pytestmark = pytest.mark.browser

IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
VIEWPORTS = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "user_agent": IPHONE_UA},
    "desktop": {"viewport": {"width": 1280, "height": 900}},
}


class Visitor:
    """One person's browser at one size; `check` holds each page to the width and to axe."""

    def __init__(self, browser, live_server, size: str, shots):
        options = VIEWPORTS[size]
        self.width = options["viewport"]["width"]
        self.size = size
        self.shots = shots
        self.context = browser.new_context(base_url=live_server.url, accept_downloads=True, **options)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()

    def visit(self, path: str, name: str, *, status: int = 200):
        response = self.page.goto(path)
        assert response is not None and response.status == status, (path, response and response.status)
        self.check(name)
        return response

    def check(self, name: str) -> None:
        save_screenshot(self.page, self.shots, f"{self.size}-{name}")
        assert_fits(self.page, width=self.width)
        assert_accessible(self.page, f"{name} at {self.width} px")

    def focused(self) -> dict:
        return self.page.evaluate(
            "(() => { const e = document.activeElement; return {tag: e.tagName.toLowerCase(), id: e.id,"
            " cls: e.className, invalid: e.getAttribute('aria-invalid'), text: e.textContent.trim()} })()"
        )


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_every_self_service_page_fits_and_passes_axe(browser, live_server, pki, alice, approver, tmp_path, size):  # noqa: F811
    from django.utils import timezone
    from playwright.sync_api import expect

    from enrollment.models import CertificateRequest
    from enrollment.services.requests import certificate_request_approve, certificate_request_create
    from escrow.models import PickupCopy
    from escrow.services.recovery import recovery_request_create

    shots = screenshot_dir(tmp_path)
    alice_browser = Visitor(browser, live_server, size, shots)
    page = alice_browser.page

    # The log-in page, and focus on the error after a wrong password.
    alice_browser.visit("/login/", "login")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not the password")
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    focused = alice_browser.focused()
    assert "errorlist" in focused["cls"] and "enter a correct username and password" in focused["text"].lower(), focused
    alice_browser.check("login-error")
    portal_login(page, "alice", PASSWORD)

    # 1. No request: the request form is the page's action; the header leads everywhere.
    alice_browser.check("home-no-request")
    expect(page.locator("[data-card=no-request]")).to_be_visible()
    expect(page.get_by_role("heading", name="Request a certificate")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    for link in ("My certificates", "Install help", "Key recovery", "API tokens"):
        expect(nav.get_by_role("link", name=link)).to_be_visible()
    expect(page.get_by_role("link", name="Administration")).to_have_count(0)  # not staff

    # 2. Waiting for approval: what happens next, and no second request form.
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    page.reload()
    card = page.locator("[data-card=pending]")
    expect(card.get_by_role("heading", name="Waiting for approval")).to_be_visible()
    expect(card).to_contain_text("The approvers have been sent a mail")
    expect(card).to_contain_text(f"request #{request.pk}")
    expect(page.locator("#request-form")).to_have_count(0)
    alice_browser.check("home-pending")

    # 3. Ready to download, with the deadline; the primary action opens the download page.
    request = certificate_request_approve(request_id=request.pk, approver=approver)
    assert request.state == CertificateRequest.State.ISSUED, request.reason
    certificate = request.certificate
    page.reload()
    card = page.locator(f"article[data-serial='{certificate.serial}']")
    expect(card.get_by_role("heading", name="Ready to download")).to_be_visible()
    expect(card).to_contain_text(timezone.localtime(certificate.pickup.expires_at).strftime("%Y-%m-%d %H:%M"))
    # The details are behind a disclosure; the serial is not the first thing on the card.
    expect(card.get_by_text(certificate.fingerprint_sha256)).to_be_hidden()
    assert card.inner_text().find(certificate.serial) == -1
    alice_browser.check("home-ready")
    card.get_by_text("Certificate details").click()
    expect(card.get_by_text(certificate.fingerprint_sha256)).to_be_visible()
    alice_browser.check("home-ready-details")
    with page.expect_navigation():
        card.get_by_role("link", name="Download key and certificate").click()
    page.wait_for_url(re.compile(rf"/certificates/{certificate.serial}/pkcs12/$"))
    alice_browser.check("download")

    # A bad submit: the focus lands on the first field in error, which names its hint and error.
    page.get_by_label("Passphrase", exact=True).fill("a long enough passphrase")
    page.get_by_label("Passphrase (again)").fill("another long passphrase")
    with page.expect_navigation():
        page.get_by_role("button", name="Download PKCS#12").click()
    expect(page.get_by_text("The two passphrases differ.")).to_be_visible()
    focused = alice_browser.focused()
    assert (focused["id"], focused["invalid"]) == ("id_passphrase_again", "true"), focused
    described = page.locator("#id_passphrase").get_attribute("aria-describedby").split()
    for target in described:  # every id it names exists: a screen reader reads the hint
        expect(page.locator(f"#{target}")).to_have_count(1)
    expect(page.locator("#id_passphrase_helptext")).to_contain_text("At least 12 characters")
    alice_browser.check("download-error")

    # 4. Downloaded: next, install it; the phone (an iPhone) is pointed at its own mail app.
    PickupCopy.objects.filter(certificate=certificate).update(download_count=1, last_downloaded_at=timezone.now())
    alice_browser.visit("/", "home-downloaded")
    card = page.locator(f"article[data-serial='{certificate.serial}']")
    expect(card.get_by_role("heading", name="Next: install it on your device")).to_be_visible()
    install = card.get_by_role("link", name=re.compile(r"^Install on "))
    expected_install = "/help/install/ios-mail/" if size == "phone" else "/help/install/"
    assert install.get_attribute("href") == expected_install
    with page.expect_navigation():
        install.click()
    alice_browser.check("install-recommended")
    alice_browser.visit("/help/install/", "install-index")
    alice_browser.visit("/help/install/outlook-windows/", "install-outlook-windows")

    # 5. Valid, the download window closed: valid until …; lost or compromised behind a disclosure.
    PickupCopy.objects.filter(certificate=certificate).update(expires_at=timezone.now() - timedelta(seconds=1))
    alice_browser.visit("/", "home-valid")
    card = page.locator(f"article[data-serial='{certificate.serial}']")
    expect(card.get_by_role("heading", name=re.compile(r"^Valid until "))).to_be_visible()
    expect(card.get_by_role("button", name="Revoke certificate")).to_be_hidden()
    card.get_by_text("Lost or compromised? Revoke…").click()
    expect(card.get_by_role("button", name="Revoke certificate")).to_be_visible()
    expect(page.locator("#request-form")).not_to_have_attribute("open", "")  # another request: a disclosure
    alice_browser.check("home-valid-revoke-open")

    # Key recovery, with a request in its table (the table that scrolled sideways on a phone).
    recovery_request_create(requested_by=alice, reason="Lost laptop", serial=certificate.serial)
    alice_browser.visit("/recovery/", "recovery")
    expect(page.locator("tr[data-recovery]")).to_have_count(1)

    # API tokens, with one token in the table.
    alice_browser.visit("/tokens/", "tokens-empty")
    page.get_by_label("Name").fill("a backup script")
    with page.expect_navigation():
        page.get_by_role("button", name="Create token").click()
    expect(page.locator("#new-token")).to_be_visible()
    expect(page.locator("tr[data-token]")).to_have_count(1)
    expect(page.get_by_role("columnheader", name="State")).to_have_count(1)
    alice_browser.check("tokens")
    expect(page.get_by_role("main").get_by_role("link", name="Back to my certificates")).to_be_visible()

    # The password again before a key leaves the portal.
    alice_browser.visit("/reauthenticate/?next=/", "reauthenticate")
    page.get_by_label("Password").fill("not my password")
    with page.expect_navigation():
        page.get_by_role("button", name="Continue").click()
    focused = alice_browser.focused()
    assert (focused["id"], focused["invalid"]) == ("id_password", "true"), focused
    alice_browser.check("reauthenticate-error")
    alice_browser.context.close()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_the_second_factor_pages_fit_and_pass_axe(browser, live_server, pki, make_user, settings, tmp_path, size):  # noqa: F811
    from playwright.sync_api import expect

    from enrollment.roles import APPROVERS

    settings.PORTAL_DEMO_2FA = True
    make_user("olga", groups=[APPROVERS], given_name="Olga", surname="Approver")
    olga = Visitor(browser, live_server, size, screenshot_dir(tmp_path))
    page = olga.page
    page.goto("/login/")
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/second-factor/"))
    expect(page.get_by_role("heading", name="Set up your second factor")).to_be_visible()
    olga.check("second-factor-setup")
    page.get_by_label("Code from the app").fill("12")
    with page.expect_navigation():
        page.get_by_role("button", name="Confirm").click()
    focused = olga.focused()
    assert (focused["id"], focused["invalid"]) == ("id_code", "true"), focused
    olga.check("second-factor-setup-error")
    olga.context.close()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_the_recovered_key_pages_fit_and_pass_axe(  # noqa: F811
    browser, live_server, pki, issued, alice, approver, approver2, agent_user, agent_p12, tmp_path, size
):
    from playwright.sync_api import expect

    from escrow.services.recovery import recovery_request_approve, recovery_request_complete, recovery_request_create

    recovery = recovery_request_create(requested_by=alice, reason="Lost laptop", serial=issued.serial)
    for who in (approver, approver2):
        recovery_request_approve(request_id=recovery.pk, approver=who)
    recovery_request_complete(
        request_id=recovery.pk, agent=agent_user, agent_pkcs12=agent_p12, passphrase=AGENT_PASSPHRASE
    )
    visitor = Visitor(browser, live_server, size, screenshot_dir(tmp_path))
    page = visitor.page
    portal_login(page, "alice", PASSWORD)
    expect(page.locator("#recovered-keys")).to_be_visible()
    visitor.check("home-recovered-key")
    visitor.visit("/recovery/", "recovery-completed")
    with page.expect_navigation():
        page.locator("tr[data-pickup]").get_by_role("link", name="Key and certificate (PKCS#12)").click()
    expect(page.get_by_role("heading", name="Download recovered key")).to_be_visible()
    visitor.check("recovery-download")
    page.get_by_label("Passphrase", exact=True).fill("a long enough passphrase")
    page.get_by_label("Passphrase (again)").fill("a different passphrase")
    with page.expect_navigation():
        page.get_by_role("button", name="Download PKCS#12").click()
    focused = visitor.focused()
    assert (focused["id"], focused["invalid"]) == ("id_passphrase_again", "true"), focused
    visitor.check("recovery-download-error")
    visitor.context.close()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_the_lockout_and_mail_setup_pages_fit_and_pass_axe(  # noqa: F811
    browser, live_server, pki, make_user, pki_admin, settings, tmp_path, size
):
    """The page a locked-out person meets, and the administrators' mail-service set-up page."""
    from playwright.sync_api import expect

    administrator = Visitor(browser, live_server, size, screenshot_dir(tmp_path))
    portal_login(administrator.page, pki_admin.username, PASSWORD)
    administrator.visit("/staff/mail-setup/", "mail-setup")
    expect(administrator.page.get_by_role("link", name=re.compile(r"\.p7b"))).not_to_have_count(0)
    administrator.context.close()

    # Last: five failures lock the source address (this browser's) as well as the account.
    make_user("mallory", given_name="Mallory", surname="Guesser")
    visitor = Visitor(browser, live_server, size, screenshot_dir(tmp_path))
    page = visitor.page
    page.goto("/login/")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.get_by_label("Username").fill("mallory")
        page.get_by_label("Password").fill("not the password at all")
        with page.expect_navigation() as navigation:
            page.get_by_role("button", name="Log in").click()
    assert navigation.value.status == 429, navigation.value.status
    expect(page.get_by_role("heading", level=1)).to_contain_text("locked")
    visitor.check("locked-out")
    visitor.context.close()


def test_the_checks_catch_what_they_are_for(browser, live_server, pki, tmp_path):  # noqa: F811
    """A button without a name and a too-wide element, put into a real page: axe and assert_fits see them."""
    from axe_testing import axe_violations

    visitor = Visitor(browser, live_server, "phone", screenshot_dir(tmp_path))
    visitor.visit("/login/", "login-before-breaking")
    visitor.page.evaluate(
        "() => { const b = document.createElement('button'); document.querySelector('main').append(b);"
        " const wide = document.createElement('div'); wide.style.width = '600px'; wide.textContent = 'x';"
        " document.querySelector('main').append(wide); }"
    )
    assert "button-name" in {violation["id"] for violation in axe_violations(visitor.page)}
    # A phone browser widens its layout viewport to the content rather than scroll: either shows.
    with pytest.raises(AssertionError, match=r"px wide in a 390 px window|viewport is \d+ px wide, not 390"):
        assert_fits(visitor.page, width=390)
    visitor.context.close()
