"""In a real browser: an approver's first log-in sets up the second factor from the QR code page,
and the next log-in asks for a code before the admin opens."""

from __future__ import annotations

import re
from base64 import b32decode

import pytest
from portal_testing import PASSWORD
from test_browser_flow import browser, new_page  # noqa: F401

pytestmark = pytest.mark.browser


def _code(secret: str, *, steps_ahead: int = 0) -> str:
    """What an authenticator app shows for the key typed from the page (RFC 6238: SHA-1, 30 s, 6 digits)."""
    from django_otp.oath import totp

    key = b32decode(secret.replace(" ", ""))
    return f"{totp(key, step=30, digits=6, drift=steps_ahead):06d}"


def _log_in_to_the_admin(page, username: str) -> None:
    page.goto("/admin/")
    page.get_by_label("Username:").fill(username)
    page.get_by_label("Password:").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()


def test_an_approver_sets_up_the_second_factor_then_verifies_it(browser, live_server, pki, make_user, settings):  # noqa: F811
    from playwright.sync_api import expect

    from enrollment.roles import APPROVERS

    settings.PORTAL_DEMO_2FA = True
    make_user("olga", groups=[APPROVERS], given_name="Olga", surname="Approver")

    page = new_page(browser, live_server)
    _log_in_to_the_admin(page, "olga")
    page.wait_for_url(re.compile(r"/second-factor/\?next=%2Fadmin%2F$"))
    expect(page.get_by_role("heading", name="Set up your second factor")).to_be_visible()
    qr_code = page.locator("#qr-code svg")
    expect(qr_code).to_be_visible()
    box = qr_code.bounding_box()
    assert box["width"] >= 100 and box["height"] >= 100  # large enough to scan
    secret = page.locator("#totp-secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{1,4})+", secret)

    page.get_by_label("Code from the app").fill(_code(secret))
    with page.expect_navigation():
        page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="Your second factor is set up")).to_be_visible()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    with page.expect_navigation():
        page.get_by_role("link", name="I have kept my recovery codes: continue").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    expect(page.get_by_text("Site administration")).to_be_visible()

    # The next log-in: the password, then a code (the next one: each code works once).
    later = new_page(browser, live_server)
    _log_in_to_the_admin(later, "olga")
    later.wait_for_url(re.compile(r"/second-factor/verify/"))
    later.get_by_label("Code from the app, or a recovery code").fill("000000" if _code(secret) != "000000" else "111111")
    with later.expect_navigation():
        later.get_by_role("button", name="Verify").click()
    expect(later.locator(".errorlist")).to_contain_text("wrong")
    later.wait_for_timeout(1100)  # a wrong code slows the next attempt down by a second
    later.get_by_label("Code from the app, or a recovery code").fill(_code(secret, steps_ahead=1))
    with later.expect_navigation():
        later.get_by_role("button", name="Verify").click()
    later.wait_for_url(re.compile(r"/admin/$"))
    expect(later.get_by_text("Site administration")).to_be_visible()
