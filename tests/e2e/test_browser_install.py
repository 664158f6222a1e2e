"""In Chromium: the install chooser, every mail client's page and the administrators' set-up page
render without a console error, page error or CSP violation, and the chooser's links lead to them."""

from __future__ import annotations

import pytest
from portal_testing import PASSWORD
from test_browser_csp import Watched
from test_browser_flow import browser, new_page, portal_login  # noqa: F401

from portal.install_views import CLIENTS

pytestmark = pytest.mark.browser


def test_the_install_pages_render_without_console_errors(browser, live_server, pki, make_user):  # noqa: F811
    from playwright.sync_api import expect

    from enrollment.roles import PKI_ADMINISTRATORS

    visitor = Watched(new_page(browser, live_server))
    visitor.visit("/help/install/")
    expect(visitor.page.get_by_role("heading", name="Which mail client do you use?")).to_be_visible()
    visitor.assert_clean("/help/install/")
    for client in CLIENTS:
        visitor.page.goto("/help/install/")
        with visitor.page.expect_navigation():
            visitor.page.get_by_role("link", name=client.name, exact=True).click()
        expect(visitor.page.get_by_role("heading", level=1)).to_have_text(client.name)
        expect(visitor.page.get_by_role("heading", name="Trusting the organization's root CA")).to_be_visible()
        visitor.assert_clean(client.slug)

    make_user("pkiadmin", groups=[PKI_ADMINISTRATORS], given_name="Pat", surname="Admin")
    admin = Watched(new_page(browser, live_server))
    portal_login(admin.page, "pkiadmin", PASSWORD)
    admin.visit("/staff/mail-setup/")
    expect(
        admin.page.get_by_role("heading", name="Exchange Online (Outlook on the web, Outlook for iOS and Android)")
    ).to_be_visible()
    expect(admin.page.get_by_role("link", name="ca-certificates.p7b")).to_be_visible()
    admin.assert_clean("/staff/mail-setup/")
