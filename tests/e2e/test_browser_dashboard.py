"""The admin dashboard in Chromium: an auditor opens it on a 1280 px desktop and a 390×844 phone (no
horizontal scrolling, axe-core finds no serious or critical violation) and follows a number to the
list behind it, which shows that many rows. Screenshots go to E2E_SCREENSHOT_DIR or tmp_path."""

from __future__ import annotations

import re

import pytest
from axe_testing import assert_accessible, assert_fits, save_screenshot, screenshot_dir
from dashboard_testing import seeded  # noqa: F401 - the fixture
from portal_testing import PASSWORD
from test_browser_flow import TIMEOUT_MS, admin_login, browser  # noqa: F401 - the fixture is reused
from test_browser_self_service import VIEWPORTS

pytestmark = pytest.mark.browser

# (the panel, the row's label): the number the auditor follows at each size.
FOLLOWED = {
    "desktop": ("expiring", "within 30 days", re.compile(r"expires_within=30")),
    "phone": ("requests", "Pending", re.compile(r"state__exact=pending")),
}


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_an_auditor_reads_the_dashboard_and_follows_a_number(browser, live_server, seeded, auditor, tmp_path, size):  # noqa: F811
    from playwright.sync_api import expect

    options = VIEWPORTS[size]
    width = options["viewport"]["width"]
    context = browser.new_context(base_url=live_server.url, **options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    shots = screenshot_dir(tmp_path)

    admin_login(page, "auditor", PASSWORD)
    response = page.goto("/admin/dashboard/")
    assert response is not None and response.status == 200
    expect(page.get_by_role("heading", name="Certificates issued per week")).to_be_visible()
    expect(page.get_by_role("heading", name="Audit chain")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("^Certificates issued per week"))).to_be_visible()
    save_screenshot(page, shots, f"{size}-dashboard")
    assert_fits(page, width=width)
    assert_accessible(page, f"the dashboard at {width} px")

    panel, label, url = FOLLOWED[size]
    row = page.locator(f"#panel-{panel} tr", has=page.get_by_role("rowheader", name=label, exact=True))
    link = row.get_by_role("link")
    number = int(link.inner_text())
    assert number > 0
    link.click()
    page.wait_for_url(url)
    expect(page.locator("#result_list tbody tr")).to_have_count(number)
    save_screenshot(page, shots, f"{size}-dashboard-followed")
    context.close()
