"""In a real browser, under the site's Content-Security-Policy: a PKI administrator finds a person in
a real slapd from the admin's Add employee page, picks them (a link, no script) and saves the form."""

from __future__ import annotations

import pytest
from axe_testing import save_screenshot, screenshot_dir
from portal_testing import PASSWORD, require_tool
from slapd_server import PEOPLE_DN, PUBLISHER_DN, PUBLISHER_PASSWORD, SlapdServer, find_program, person_dn
from test_browser_csp import Watched
from test_browser_flow import admin_login, browser, new_page  # noqa: F401 - fixture

from enrollment.models import Employee
from enrollment.roles import PKI_ADMINISTRATORS

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    server = SlapdServer(
        tmp_path_factory.mktemp("slapd"),
        slapd=find_program("slapd") or require_tool("slapd"),
        slapadd=find_program("slapadd") or require_tool("slapadd"),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_find_pick_and_add_an_employee_in_a_browser(
    browser,  # noqa: F811
    live_server,
    slapd,
    settings,
    make_user,
    alice,
    tmp_path,
):
    from playwright.sync_api import expect

    settings.PORTAL_LDAP_URI = slapd.uri
    settings.PORTAL_LDAP_BIND_DN = PUBLISHER_DN
    settings.PORTAL_LDAP_BIND_PASSWORD = PUBLISHER_PASSWORD
    settings.PORTAL_LDAP_USER_BASE_DN = PEOPLE_DN
    settings.PORTAL_LDAP_TIMEOUT = 2
    make_user("pkiadmin", groups=[PKI_ADMINISTRATORS], given_name="Petra", surname="Admin")
    admin = Watched(new_page(browser, live_server))
    admin_login(admin.page, "pkiadmin", PASSWORD)

    admin.visit("/admin/enrollment/employee/add/")
    admin.page.get_by_label("Find in the directory").fill("example.org")
    with admin.page.expect_navigation():
        admin.page.get_by_role("button", name="Search").click()
    results = admin.page.locator("table.directory-pick-results")
    expect(results).to_contain_text("Carol Clark")
    expect(results.locator("tr", has_text="Alice Archer")).to_contain_text("Already an employee")
    save_screenshot(admin.page, screenshot_dir(tmp_path), "directory-pick-results")
    admin.assert_clean("directory search results")

    with admin.page.expect_navigation():
        results.locator("tr", has_text="Carol Clark").get_by_role("link", name="Fill in the form").click()
    expect(admin.page.locator("#id_given_name")).to_have_value("Carol")
    expect(admin.page.locator("#id_mail")).to_have_value("carol@example.org")
    expect(admin.page.locator("#id_directory_dn")).to_have_value(person_dn("carol"))
    expect(admin.page.locator("#id_username")).to_have_value("carol")
    admin.assert_clean("add form filled in from the directory")

    with admin.page.expect_navigation():
        admin.page.get_by_role("button", name="Save", exact=True).click()
    admin.assert_clean("saved")
    carol = Employee.objects.get(mail="carol@example.org")
    assert (carol.user.username, carol.surname, carol.directory_dn) == ("carol", "Clark", person_dn("carol"))
