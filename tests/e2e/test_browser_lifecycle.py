"""In a real browser: an employee renews an expiring certificate, then revokes the old one.

The revocation is on the CRL the live server serves right after the click.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from portal_testing import PASSWORD
from test_browser_flow import browser, new_page, portal_login  # noqa: F401 - the fixture is reused

pytestmark = pytest.mark.browser


def test_renew_then_revoke_the_old_certificate_in_a_browser(browser, live_server, pki, issued, alice):  # noqa: F811
    from django.utils import timezone
    from playwright.sync_api import expect

    from enrollment.models import Certificate

    Certificate.objects.filter(pk=issued.pk).update(not_after=timezone.now() + timedelta(days=10))
    page = new_page(browser, live_server)
    portal_login(page, "alice", PASSWORD)
    row = page.locator(f"[data-serial='{issued.serial}']")

    # Renew: an unchanged identity is issued at once (the default policy).
    with page.expect_navigation():
        row.get_by_role("button", name="Renew").click()
    expect(page.get_by_text("Renewed: your new certificate")).to_be_visible()
    renewal = Certificate.objects.exclude(pk=issued.pk).get(employee=alice.employee)
    expect(page.locator(f"[data-serial='{renewal.serial}'] .state")).to_have_text("valid")
    # The new certificate is the current one; the renewed one is listed under the previous ones.
    expect(page.locator(f"article[data-serial='{renewal.serial}']")).to_be_visible()
    expect(page.locator(f"#previous-certificates [data-serial='{issued.serial}']")).to_contain_text("renewed")

    # Revoke the old one as superseded, which an employee may do without an administrator.
    row.get_by_text("Lost or compromised? Revoke…").click()
    row.get_by_label("Reason").select_option("superseded")
    row.get_by_role("button", name="Revoke certificate").click()  # not confirmed: the browser does not send it
    assert Certificate.objects.get(pk=issued.pk).status == "valid"
    row.get_by_label("I understand that revocation is final.").check()
    with page.expect_navigation():
        row.get_by_role("button", name="Revoke certificate").click()
    expect(page.get_by_text(f"Certificate {issued.serial} is revoked")).to_be_visible()
    expect(row.locator(".state")).to_have_text("revoked")
    expect(page.locator(f"[data-serial='{renewal.serial}'] .state")).to_have_text("valid")

    crl = x509.load_der_x509_crl(page.request.get("/pki/issuing-ca.crl").body())
    entry = crl.get_revoked_certificate_by_serial_number(int(issued.serial, 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.superseded
    assert crl.get_revoked_certificate_by_serial_number(int(renewal.serial, 16)) is None
