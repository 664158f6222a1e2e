"""The people's journey end to end on a 390×844 phone, by mail and link as people meet it (issue 15).

An employee requests a certificate and sees that it waits; the approver gets the mail, opens its
link and approves from the queue; the employee gets the mail that it is ready, opens its link,
downloads, and sees the next step; an auditor opens the dashboard and follows a number to the
list behind it. On every page: no horizontal scrolling at 390 px, and axe-core finds no serious
or critical violation. Screenshots go to E2E_SCREENSHOT_DIR (or the test's tmp_path).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from axe_testing import assert_accessible, assert_fits, save_screenshot, screenshot_dir
from mail_testing import links, mails_to
from portal_testing import PASSWORD
from test_browser_flow import PKCS12_PASSPHRASE, TIMEOUT_MS, admin_login, browser, portal_login  # noqa: F401
from test_browser_self_service import VIEWPORTS

pytestmark = pytest.mark.browser

PHONE = VIEWPORTS["phone"]
WIDTH = PHONE["viewport"]["width"]


def _phone(browser, live_server):
    context = browser.new_context(base_url=live_server.url, accept_downloads=True, **PHONE)
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class Checked:
    """Each page the journey reaches: it fits the phone, passes axe, and leaves a screenshot."""

    def __init__(self, tmp_path):
        self.shots = screenshot_dir(tmp_path)
        self.step = 0

    def __call__(self, page, name: str) -> None:
        self.step += 1
        save_screenshot(page, self.shots, f"journey-{self.step:02d}-{name}")
        assert_fits(page, width=WIDTH)
        assert_accessible(page, f"{name} at {WIDTH} px")


def test_request_mail_queue_mail_download_dashboard_on_a_phone(
    browser, live_server, pki, alice, approver, auditor, settings, mailoutbox, tmp_path  # noqa: F811
):
    from playwright.sync_api import expect

    from enrollment.models import CertificateRequest

    settings.PORTAL_SITE_URL = live_server.url  # the links in the mails lead to this server
    checked = Checked(tmp_path)

    # 1. Alice asks for a certificate from her phone and is told it waits, and for whom.
    employee = _phone(browser, live_server)
    portal_login(employee, alice.get_username(), PASSWORD)
    checked(employee, "home-no-request")
    with employee.expect_navigation():
        employee.get_by_role("button", name="Request certificate").click()
    (request,) = CertificateRequest.objects.filter(employee=alice.employee)
    waiting = employee.locator('[data-card="pending"]')
    expect(waiting.get_by_role("heading", name="Waiting for approval")).to_be_visible()
    expect(employee.get_by_role("button", name="Request certificate")).to_have_count(0)  # no second request
    checked(employee, "home-waiting")

    # 2. The approver's mail carries the queue; he opens it on his phone and approves there.
    (to_approver,) = mails_to(approver.email)
    queue_link = next(link for link in links(to_approver.body) if "state__exact=pending" in link)
    staff = _phone(browser, live_server)
    admin_login(staff, approver.get_username(), PASSWORD)
    staff.goto(_path(queue_link))
    row = staff.locator(f'tr:has(input.action-select[value="{request.pk}"])')
    expect(staff.locator("#result_list tbody tr")).to_have_count(1)
    checked(staff, "approver-queue")
    with staff.expect_navigation():
        row.get_by_role("button", name=re.compile("^Approve")).click()
    request.refresh_from_db()
    assert request.state == "issued", request.reason
    certificate = request.certificate
    expect(staff.locator("ul.messagelist li.success")).to_contain_text(certificate.serial)
    checked(staff, "approver-queue-after")

    # 3. Alice's mail says it is ready, with the deadline and the link to her download.
    ready = [message for message in mails_to(alice.email) if certificate.serial in message.body]
    assert ready, [message.subject for message in mails_to(alice.email)]
    download_link = next(link for link in links(ready[-1].body) if link.endswith(f"/certificates/{certificate.serial}/pkcs12/"))
    assert f"{certificate.pickup.expires_at:%Y-%m-%d}" in ready[-1].body
    employee.goto(_path(download_link))
    if "/reauthenticate/" in employee.url:  # the password again before a key leaves the portal
        employee.get_by_label("Password").fill(PASSWORD)
        with employee.expect_navigation():
            employee.get_by_role("button", name=re.compile("^(Continue|Confirm)")).click()
    checked(employee, "download")
    employee.get_by_label("Passphrase", exact=True).fill(PKCS12_PASSPHRASE)
    employee.get_by_label("Passphrase (again)").fill(PKCS12_PASSPHRASE)
    with employee.expect_download() as download:
        employee.get_by_role("button", name=re.compile("^Download")).click()
    assert download.value.suggested_filename.endswith((".p12", ".pfx", ".mobileconfig"))

    # ... and home tells her what comes next: installing it on this phone's own mail app.
    employee.goto("/")
    next_step = employee.locator(f'[data-card="downloaded"][data-serial="{certificate.serial}"]')
    expect(next_step.get_by_role("heading", name="Next: install it on your device")).to_be_visible()
    expect(next_step.get_by_role("link", name=re.compile("^Install on iOS"))).to_be_visible()
    checked(employee, "home-downloaded")

    # 4. The auditor opens the dashboard and follows a number to the list behind it.
    audit = _phone(browser, live_server)
    admin_login(audit, auditor.get_username(), PASSWORD)
    audit.goto("/admin/dashboard/")
    expect(audit.get_by_role("heading", name="Certificates issued per week")).to_be_visible()
    checked(audit, "auditor-dashboard")
    issued = audit.locator("#panel-requests tr", has=audit.get_by_role("rowheader", name="Issued", exact=True))
    link = issued.get_by_role("link")
    assert int(link.inner_text()) == 1
    link.click()
    audit.wait_for_url(re.compile(r"state__exact=issued"))
    expect(audit.locator("#result_list tbody tr")).to_have_count(1)
    checked(audit, "auditor-dashboard-followed")
