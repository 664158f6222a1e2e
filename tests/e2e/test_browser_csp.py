"""In a real browser, every kind of page works under the Content-Security-Policy and breaks none of it.

Chromium reports each blocked script, style, font, image or worker as a console error ("Refused
to ...") and as a securitypolicyviolation event; both are collected (the listener is installed
through DevTools, so the policy does not block it) and must stay empty while each page does what
it is for: the self-service pages, the log-in, the second-factor set-up with its QR code, the
admin (a changelist with actions, the audit log), Swagger UI and ReDoc from the sidecar's files.
"""

from __future__ import annotations

import re

import pytest
from portal_testing import PASSWORD
from test_browser_flow import browser, new_page, portal_login  # noqa: F401

pytestmark = pytest.mark.browser

COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI} (${event.sourceFile}:${event.lineNumber})`);
});
"""


class Watched:
    """A page whose console errors, page errors and CSP violations are kept."""

    def __init__(self, page):
        self.page = page
        self.problems: list[str] = []
        page.add_init_script(COLLECT_VIOLATIONS)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))

    def _console(self, message) -> None:
        # The browser asks every site for /favicon.ico, which the portal does not have.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            self.problems.append(f"{message.text} ({message.location.get('url')})")

    def visit(self, path: str):
        response = self.page.goto(path)
        assert response is not None and response.ok, (path, response and response.status)
        assert "nonce" not in response.headers["content-security-policy"] or re.search(
            r"'nonce-[A-Za-z0-9+/=]+'", response.headers["content-security-policy"]
        )
        return response

    def assert_clean(self, where: str, *, expected: list[str] = ()) -> None:
        """No violation nor error so far, but those that start with one of `expected` (then seen)."""
        violations = self.page.evaluate("window.__cspViolations || []")
        unexpected = [v for v in violations if not any(v.startswith(prefix) for prefix in expected)]
        assert unexpected == [], (where, violations)
        problems = [p for p in self.problems if not any(prefix.split()[-1] in p for prefix in expected)]
        assert problems == [], (where, self.problems)
        self.page.evaluate("window.__cspViolations = []")
        self.problems.clear()


def test_the_pages_work_under_the_policy(browser, live_server, pki, alice, make_user, settings):  # noqa: F811
    from playwright.sync_api import expect

    from enrollment.roles import APPROVERS

    employee = Watched(new_page(browser, live_server))
    employee.visit("/login/")
    employee.assert_clean("log-in page")
    portal_login(employee.page, "alice", PASSWORD)
    expect(employee.page.locator("header")).to_contain_text("alice")
    # The stylesheet applies: the header has its colour from portal/static/portal/portal.css.
    assert (
        employee.page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor")
        == "rgb(31, 58, 95)"
    )
    for path in ("/", "/help/install/", "/tokens/"):
        employee.visit(path)
        employee.assert_clean(path)

    # Swagger UI renders the operations, ReDoc the API's title and its operations.
    employee.visit("/api/v1/docs/")
    expect(employee.page.locator(".opblock").first).to_be_visible()
    employee.assert_clean("Swagger UI")
    employee.visit("/api/v1/redoc/")
    expect(employee.page.get_by_role("heading", name=re.compile("portal API"))).to_be_visible(timeout=30_000)
    expect(employee.page.locator("[data-section-id]").first).to_be_attached()
    # ReDoc's sidebar always asks Redocly's CDN for its logo: the one violation the policy is there
    # for (no third-party fetch from the CA's pages); the img's onError removes it, the link stays.
    employee.assert_clean("ReDoc", expected=["img-src https://cdn.redoc.ly/redoc/logo-mini.svg"])

    # The second factor's set-up page shows its QR code (inline SVG, no style).
    settings.PORTAL_DEMO_2FA = True
    make_user("olga", groups=[APPROVERS], given_name="Olga", surname="Approver")
    approver = Watched(new_page(browser, live_server))
    approver.visit("/admin/")
    approver.page.get_by_label("Username:").fill("olga")
    approver.page.get_by_label("Password:").fill(PASSWORD)
    with approver.page.expect_navigation():
        approver.page.get_by_role("button", name="Log in").click()
    approver.page.wait_for_url(re.compile(r"/second-factor/"))
    qr_code = approver.page.locator("#qr-code svg")
    expect(qr_code).to_be_visible()
    assert qr_code.bounding_box()["width"] >= 100
    approver.assert_clean("admin log-in and second-factor set-up")

    # The admin, as a superuser (exempt from the second factor like the demo accounts): the index,
    # a changelist with actions (its JavaScript ticks rows), an add form, the audit log.
    settings.PORTAL_DEMO_2FA = False
    make_user("root", superuser=True, employee=False)
    admin = Watched(new_page(browser, live_server))
    admin.visit("/admin/")
    admin.page.get_by_label("Username:").fill("root")
    admin.page.get_by_label("Password:").fill(PASSWORD)
    with admin.page.expect_navigation():
        admin.page.get_by_role("button", name="Log in").click()
    admin.page.wait_for_url(re.compile(r"/admin/$"))
    expect(admin.page.get_by_text("Site administration")).to_be_visible()
    admin.assert_clean("admin index")
    admin.visit("/admin/enrollment/certificaterequest/")
    admin.assert_clean("request changelist")
    admin.visit("/admin/audit/auditevent/")
    select_all = admin.page.locator("#action-toggle")
    if select_all.count():
        select_all.check()
        expect(admin.page.locator(".action-counter")).to_contain_text("selected")
    admin.assert_clean("audit log")
    admin.visit("/admin/auth/user/add/")
    admin.assert_clean("user add form")
