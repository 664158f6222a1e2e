"""In a real browser: the recovery admin's searchable pickers, and the agent's file kept across a
mistyped passphrase (the agent types the passphrase again and chooses no file)."""

from __future__ import annotations

import re

import pytest
from portal_testing import PASSWORD
from test_browser_flow import admin_login, browser, new_page  # noqa: F401

pytestmark = pytest.mark.browser

AGENT_PASSPHRASE = "agent passphrase for the browser test"


def test_a_pki_administrator_picks_the_certificate_by_name(browser, live_server, pki, issued, make_user):  # noqa: F811
    from playwright.sync_api import expect

    from enrollment.roles import PKI_ADMINISTRATORS
    from escrow.models import RecoveryRequest

    make_user("pkiadmin", groups=[PKI_ADMINISTRATORS], given_name="Petra", surname="Admin")
    page = new_page(browser, live_server)
    refused = []
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    admin_login(page, "pkiadmin", PASSWORD)
    page.goto("/admin/escrow/recoveryrequest/add/")
    page.locator("#id_certificate + .select2 .select2-selection").click()
    page.locator(".select2-search__field").fill("arch")
    option = page.locator(".select2-results__option", has_text=f"serial {issued.serial}")
    expect(option).to_contain_text("Alice Archer <alice@example.org>")
    option.click()
    page.get_by_label("Reason").fill("Helpdesk ticket 99")
    with page.expect_navigation():
        page.get_by_role("button", name="Request recovery").click()
    expect(page.locator("ul.messagelist li.success")).to_contain_text("waits for 2 approvals")
    created = RecoveryRequest.objects.get()
    assert (created.certificate_id, created.recipient.username) == (issued.pk, "alice")
    assert refused == []


def test_the_agent_retypes_only_the_passphrase(
    browser, live_server, pki, issued, alice, approver, approver2, make_user
):  # noqa: F811
    from playwright.sync_api import expect

    from enrollment.pki.pkcs12 import pkcs12_bundle
    from enrollment.roles import KEY_RECOVERY_AGENTS
    from escrow.services.recovery import recovery_request_approve, recovery_request_create

    make_user("agent", groups=[KEY_RECOVERY_AGENTS], given_name="Kim", surname="Agent")
    material = pki["material"]
    agent_p12 = pkcs12_bundle(
        key=material.kra_key,
        certificate=material.kra,
        chain=[],
        friendly_name="Test Key Recovery Agent",
        passphrase=AGENT_PASSPHRASE,
    )
    recovery = recovery_request_create(requested_by=alice, reason="Laptop stolen", serial=issued.serial)
    recovery_request_approve(request_id=recovery.pk, approver=approver)
    recovery_request_approve(request_id=recovery.pk, approver=approver2)

    page = new_page(browser, live_server)
    admin_login(page, "agent", PASSWORD)
    page.goto(f"/admin/escrow/recoveryrequest/{recovery.pk}/complete/")
    upload = {"name": "kim-agent.p12", "mimeType": "application/x-pkcs12", "buffer": agent_p12}
    page.get_by_label("Agent PKCS#12").set_input_files(upload)
    page.get_by_label("Passphrase").fill("not the passphrase")
    with page.expect_navigation():
        page.get_by_role("button", name="Decrypt and complete").click()
    expect(page.locator(".errorlist")).to_contain_text("cannot be opened")
    expect(page.locator("#kept-upload")).to_contain_text("kim-agent.p12")
    page.get_by_label("Passphrase").fill(AGENT_PASSPHRASE)  # no file chosen this time
    with page.expect_navigation():
        page.get_by_role("button", name="Decrypt and complete").click()
    page.wait_for_url(re.compile(rf"/{recovery.pk}/change/$"))
    expect(page.locator("ul.messagelist li.success")).to_contain_text("1 recovered key waits for alice")
    recovery.refresh_from_db()
    assert recovery.status == "completed"
