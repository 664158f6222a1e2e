"""In a real browser: a lost key comes back under dual control.

alice asks for her key on the self-service page; two approvers approve in the admin (each
on the confirmation page, with a comment); the key recovery agent completes the request by
uploading the agent PKCS#12; alice downloads the recovered key, which belongs to her
certificate. Nothing of the agent's credential is left in the database.
"""

from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from portal_testing import PASSWORD
from test_browser_flow import admin_login, admin_run_action, browser, new_page, portal_login, public_der  # noqa: F401

pytestmark = pytest.mark.browser

AGENT_PASSPHRASE = "agent passphrase for the browser test"
DOWNLOAD_PASSPHRASE = "recovered key passphrase 42"


def _approve_in_the_admin(page, recovery_pk: int, comment: str) -> None:
    from playwright.sync_api import expect

    page.goto("/admin/escrow/recoveryrequest/")
    admin_run_action(page, recovery_pk, "Approve selected recovery requests…")
    expect(page.get_by_text("Approve these key recoveries?")).to_be_visible()
    page.get_by_label("Comment").fill(comment)
    with page.expect_navigation():
        page.get_by_role("button", name="Approve").click()
    expect(page.locator("ul.messagelist li.success")).to_contain_text(f"recorded; recovery #{recovery_pk} ")


def test_recover_a_lost_key_in_a_browser(  # noqa: F811
    browser, live_server, pki, issued, alice, approver, approver2, make_user, tmp_path
):
    from django.db import connection
    from playwright.sync_api import expect

    from enrollment.pki.pkcs12 import pkcs12_bundle
    from enrollment.roles import KEY_RECOVERY_AGENTS
    from escrow.models import RecoveryRequest

    make_user("agent", groups=[KEY_RECOVERY_AGENTS], given_name="Kim", surname="Agent")
    material = pki["material"]
    agent_p12 = pkcs12_bundle(
        key=material.kra_key, certificate=material.kra, chain=[], friendly_name="Test Key Recovery Agent",
        passphrase=AGENT_PASSPHRASE,
    )

    # 1. alice asks for her key back.
    alice_page = new_page(browser, live_server)
    portal_login(alice_page, "alice", PASSWORD)
    alice_page.get_by_role("navigation", name="Main").get_by_role("link", name="Key recovery").click()
    alice_page.wait_for_url(re.compile(r"/recovery/$"))
    expect(alice_page.get_by_text("No recovered key is waiting for you.")).to_be_visible()
    alice_page.get_by_label("Key").select_option(issued.serial)
    alice_page.get_by_label("Reason").fill("Laptop stolen at the airport")
    with alice_page.expect_navigation():
        alice_page.get_by_role("button", name="Request recovery").click()
    recovery = RecoveryRequest.objects.get()
    assert (recovery.certificate_id, recovery.recipient, recovery.status) == (issued.pk, alice, "pending")
    expect(alice_page.locator(f'tr[data-recovery="{recovery.pk}"] .state')).to_have_text("pending")

    # 2. Dual control: one approval is not enough, the second makes it approved.
    first = new_page(browser, live_server)
    admin_login(first, "approver", PASSWORD)
    _approve_in_the_admin(first, recovery.pk, "Called alice back")
    recovery.refresh_from_db()
    assert recovery.status == "pending" and recovery.decisions.count() == 1
    second = new_page(browser, live_server)
    admin_login(second, "approver2", PASSWORD)
    _approve_in_the_admin(second, recovery.pk, "Ticket INC-4711 checked")
    recovery.refresh_from_db()
    assert recovery.status == "approved"

    # 3. The agent completes it with the agent PKCS#12; a wrong passphrase is a form error first.
    agent_page = new_page(browser, live_server)
    admin_login(agent_page, "agent", PASSWORD)
    agent_page.goto(f"/admin/escrow/recoveryrequest/{recovery.pk}/change/")
    agent_page.get_by_role("link", name="Complete with an agent key…").click()
    agent_page.wait_for_url(re.compile(rf"/{recovery.pk}/complete/$"))
    upload = {"name": "agent.p12", "mimeType": "application/x-pkcs12", "buffer": agent_p12}
    agent_page.get_by_label("Agent PKCS#12").set_input_files(upload)
    agent_page.get_by_label("Passphrase").fill("not the passphrase")
    with agent_page.expect_navigation():
        agent_page.get_by_role("button", name="Decrypt and complete").click()
    expect(agent_page.locator(".errorlist")).to_be_visible()
    recovery.refresh_from_db()
    assert recovery.status == "approved"
    agent_page.get_by_label("Agent PKCS#12").set_input_files(upload)
    agent_page.get_by_label("Passphrase").fill(AGENT_PASSPHRASE)
    with agent_page.expect_navigation():
        agent_page.get_by_role("button", name="Decrypt and complete").click()
    recovery.refresh_from_db()
    assert recovery.status == "completed"

    # 4. alice downloads the recovered key; it is the key of her certificate.
    alice_page.goto("/recovery/")
    row = alice_page.locator("tr[data-pickup]")
    expect(row).to_have_count(1)
    row.get_by_role("link", name="Key and certificate (PKCS#12)").click()
    expect(alice_page.get_by_role("heading", name="Download recovered key")).to_be_visible()
    alice_page.get_by_label("Passphrase", exact=True).fill(DOWNLOAD_PASSPHRASE)
    alice_page.get_by_label("Passphrase (again)").fill(DOWNLOAD_PASSPHRASE)
    with alice_page.expect_download() as download_info:
        alice_page.get_by_role("button", name="Download PKCS#12").click()
    p12_path = tmp_path / "recovered.p12"
    download_info.value.save_as(p12_path)
    bundle = pkcs12.load_pkcs12(p12_path.read_bytes(), DOWNLOAD_PASSPHRASE.encode())
    assert bundle.cert.certificate.serial_number == int(issued.serial, 16)
    assert public_der(bundle.key) == public_der(issued.x509.public_key())

    # The agent's credential was used in memory only.
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from the schema
            dump = repr(cursor.fetchall())
            assert AGENT_PASSPHRASE not in dump, table
            assert agent_p12[:64].hex() not in dump and repr(agent_p12[:64])[2:-1] not in dump, table
