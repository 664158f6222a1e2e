"""The approval queue in a real browser at 1280 px: from the admin home's count to the queue,
columns that fit, the separation-of-duties note instead of buttons, the busy Go button of a
synchronous bulk approval (script from a static file: the CSP allows no inline script), one
summary line, and Approve on a row.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from axe_testing import assert_accessible
from portal_testing import PASSWORD
from test_browser_flow import TIMEOUT_MS, admin_login, browser  # noqa: F401

pytestmark = pytest.mark.browser

APPROVE = "Approve selected requests (issues the certificates)"


def _wide_page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    problems = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"{m.text} {m.location.get('url', '')}")
            if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    return page, problems


def test_the_approval_queue_in_a_browser(browser, live_server, pki, alice, bob, approver, make_user, tmp_path):
    from playwright.sync_api import expect

    from enrollment.models import CertificateRequest
    from enrollment.services.requests import certificate_request_create

    carol = make_user("carol", given_name="Carol", surname="Cole")
    alices, bobs, carols = (
        certificate_request_create(employee=user.employee, submitted_by=user, key_type="ec-p256")
        for user in (alice, bob, carol)
    )
    own = certificate_request_create(employee=approver.employee, submitted_by=approver, key_type="ec-p256")

    page, problems = _wide_page(browser, live_server)
    admin_login(page, "approver", PASSWORD)
    page.get_by_role("link", name="4 requests waiting for approval").click()
    page.wait_for_url(re.compile(r"/admin/enrollment/certificaterequest/\?state__exact=pending$"))
    expect(page.locator("#result_list tbody tr")).to_have_count(4)

    # Nothing cut off at 1280 px: the table does not scroll, the State column and the buttons are on screen.
    widths = page.evaluate(
        "() => { const r = document.querySelector('#changelist .results'); return [r.scrollWidth, r.clientWidth]; }"
    )
    assert widths[0] <= widths[1], widths
    for locator in (
        page.locator("#result_list thead th.column-state"),
        page.locator(f'tr:has(input.action-select[value="{carols.pk}"]) .approve-button'),
    ):
        box = locator.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1280, box

    # Separation of duties, before anyone tries: his own request has no buttons, a reason instead.
    _screenshot(page, tmp_path, "admin-queue.png", problems)
    own_row = page.locator(f'tr:has(input.action-select[value="{own.pk}"])')
    expect(own_row.locator(".duty-conflict")).to_have_text("You cannot approve this: it is your own request.")
    expect(own_row.locator(".approve-button")).to_have_count(0)

    # A synchronous bulk approval: while the server works, Go is disabled and shows a spinner. The
    # page's own listener runs first; one on window (after it) holds the submission meanwhile.
    page.evaluate(
        "() => { window.__hold = (e) => e.preventDefault(); window.addEventListener('submit', window.__hold); }"
    )
    for request in (alices, bobs):
        page.locator(f'input.action-select[value="{request.pk}"]').check()
    page.locator("select[name=action]").select_option(label=APPROVE)
    go = page.get_by_role("button", name="Go")
    go.click()
    expect(go).to_be_disabled()
    expect(go).to_have_class(re.compile(r"\bis-busy\b"))
    expect(page.get_by_role("status")).to_contain_text("Working")
    assert page.evaluate("() => getComputedStyle(document.querySelector('.is-busy'), '::after').content") == '""'
    with page.expect_navigation():  # now let it go (the action and the selection are still in the form)
        page.evaluate(
            "() => { window.removeEventListener('submit', window.__hold);"
            " document.getElementById('changelist-form').submit(); }"
        )
    expect(page.locator("ul.messagelist li")).to_have_count(1)
    expect(page.locator("ul.messagelist li.success")).to_have_text("2 requests approved; certificates issued.")
    assert set(CertificateRequest.objects.filter(pk__in=[alices.pk, bobs.pk]).values_list("state", flat=True)) == {
        "issued"
    }

    # Approve on a row: back to the queue, as it was, with one line about it.
    page.locator(f'tr:has(input.action-select[value="{carols.pk}"])').get_by_role("button", name="Approve").click()
    page.wait_for_url(re.compile(r"state__exact=pending"))
    carols.refresh_from_db()
    assert carols.state == "issued", carols.reason
    expect(page.locator("ul.messagelist li.success")).to_have_text(
        f"Request #{carols.pk} approved; certificate {carols.certificate.serial} issued."
    )
    expect(page.locator("#result_list tbody tr")).to_have_count(1)  # only his own is left

    # His own request's page says why he cannot decide it, with who asks and their history.
    page.goto(f"/admin/enrollment/certificaterequest/{own.pk}/change/")
    expect(page.locator("#decision")).to_contain_text("You cannot approve this: it is your own request")
    expect(page.locator("#decision").get_by_role("button")).to_have_count(0)
    _screenshot(page, tmp_path, "admin-request-own.png", problems)

    # Reject from a request's page: a page of its own that asks for the reason.
    again = certificate_request_create(employee=bob.employee, submitted_by=bob, key_type="ec-p256")
    page.goto(f"/admin/enrollment/certificaterequest/{again.pk}/change/")
    expect(page.locator("#decision .approve-button")).to_be_visible()
    expect(page.locator(".employee-details")).to_contain_text("bob@example.org")
    _screenshot(page, tmp_path, "admin-request.png", problems)
    page.locator("#decision").get_by_role("link", name="Reject…").click()
    page.get_by_label("Why is it rejected?").fill("Duplicate of an issued certificate")
    _screenshot(page, tmp_path, "admin-reject.png", problems)
    with page.expect_navigation():
        page.get_by_role("button", name=f"Reject request #{again.pk}").click()
    expect(page.locator("ul.messagelist li.success")).to_have_text(f"Request #{again.pk} rejected.")
    again.refresh_from_db()
    assert (again.state, again.reason) == ("rejected", "Duplicate of an issued certificate")
    # On bob's behalf, from his employee page: submitted in the approver's name, decided by another.
    page.goto(f"/admin/enrollment/employee/{bob.employee.pk}/change/")
    page.get_by_role("link", name="Request a certificate on their behalf…").click()
    page.get_by_label("Key type").select_option(value="ec-p256")
    _screenshot(page, tmp_path, "admin-request-on-behalf.png", problems)
    with page.expect_navigation():
        page.get_by_role("button", name="Submit the request").click()
    expect(page.locator("ul.messagelist li.success")).to_contain_text("submitted for bob@example.org")
    expect(page.locator("#decision")).to_contain_text("You cannot approve this: you submitted it")
    assert CertificateRequest.objects.get(employee=bob.employee, state="pending").submitted_by == approver

    page.goto("/admin/")
    expect(page.locator("#pending-requests")).to_contain_text("2 requests waiting for approval")
    _screenshot(page, tmp_path, "admin-home.png", problems)
    assert problems == [], problems


def _screenshot(page, directory, name: str, problems: list[str]) -> None:
    """Kept as a test artifact (E2E_SCREENSHOT_DIR), as the other browser tests do; axe-core checks the page too."""
    before = len(problems)
    assert_accessible(page, name)  # the whole page: header, breadcrumbs and the queue
    # axe-core's own probes set inline styles, which the page's CSP refuses (and reports): not the page's doing.
    problems[before:] = [p for p in problems[before:] if not p.startswith("Applying inline style violates")]
    path = directory / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("E2E_SCREENSHOT_DIR"):
        shutil.copy(path, Path(os.environ["E2E_SCREENSHOT_DIR"]) / name)
