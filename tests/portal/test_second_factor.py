"""The second factor of the trusted roles on the pages: enrolment, verification, exemption, reset.

Enrolment at the first log-in (QR code, a current code, ten recovery codes shown once),
verification at later log-ins (app code or one recovery code), wrong codes refused and
audited; employees unaffected; the demo exemption only in development; the administrator's
reset. Every trusted role in the admin and on the staff paths of the pages:
test_second_factor_admin.py; the API: tests/api/test_second_factor_api.py.
"""

from __future__ import annotations

import re
from base64 import b32encode

import pytest
import segno
from django.core.management import CommandError, call_command
from portal_testing import PASSWORD
from second_factor_testing import (  # noqa: F401 - fixtures
    SETUP,
    VERIFY,
    app_code,
    enforced,
    enrol,
    real_demo_accounts,
    to_second_factor,
    unverified_client,
    verified_client,
)

from audit.models import AuditEvent
from enrollment.roles import APPROVERS, AUDITORS, KEY_RECOVERY_AGENTS, PKI_ADMINISTRATORS


def _shown_secret(html: str) -> str:
    return re.search(r'<code id="totp-secret">([A-Z2-7 =]+)</code>', html).group(1).replace(" ", "")


def _events(action: str, user=None):
    events = AuditEvent.objects.filter(action=action)
    return events.filter(actor_id=user.pk) if user is not None else events


# --- Enrolment and verification -----------------------------------------------------------


def test_first_log_in_enrols_with_a_qr_code_then_shows_recovery_codes_once(pki, enforced, make_user, client):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    carol = make_user("carol", groups=[APPROVERS])
    assert client.login(username="carol", password=PASSWORD)

    response = client.get("/admin/")
    assert to_second_factor(response, page=SETUP) and "next=%2Fadmin%2F" in response["Location"]
    page = client.get(response["Location"])
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=carol, confirmed=False)
    html = page.content.decode()
    # The QR code is inline SVG of the otpauth:// URL (no image from elsewhere), the key is there as text too.
    svg = re.search(r'<div class="qr-code" id="qr-code">(<svg.*?</svg>)</div>', html, re.S).group(1)
    assert svg == segno.make(device.config_url, error="m").svg_inline(
        scale=4, border=2, title="QR code for your authenticator app"
    )
    assert "<path" in svg
    assert device.config_url.startswith("otpauth://totp/") and "issuer=" in device.config_url
    secret = b32encode(device.bin_key).decode()
    assert _shown_secret(html) == secret
    # Opening the page again makes a new key: whoever saw an earlier page cannot use that one.
    reloaded = client.get(SETUP)
    device = TOTPDevice.objects.get(user=carol)
    assert _shown_secret(reloaded.content.decode()) == b32encode(device.bin_key).decode() != secret
    # A mistyped code shows the same key again.
    retry = client.post(SETUP, {"code": "12345x", "next": "/admin/"})
    assert _shown_secret(retry.content.decode()) == b32encode(device.bin_key).decode()

    done = client.post(SETUP, {"code": app_code(device), "next": "/admin/"})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", done.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert 'href="/admin/"' in done.content.decode()
    device.refresh_from_db()
    assert device.confirmed
    enrolled = _events("auth.second_factor_enrolled", carol).get()
    assert enrolled.details == {"device": "Authenticator app", "recovery_codes": 10}
    assert not any(code in str(enrolled.details) for code in codes)
    # The session has passed the factor: the admin opens.
    assert client.get("/admin/").status_code == 200
    # Setting up again is not possible with the password alone: the set-up page sends to verification.
    assert client.get(SETUP).status_code == 302


def test_a_wrong_code_at_enrolment_is_refused_and_audited(pki, enforced, make_user, client):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    carol = make_user("carol", groups=[AUDITORS])
    client.login(username="carol", password=PASSWORD)
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=carol)
    wrong = f"{(int(app_code(device)) + 1) % 1000000:06d}"

    page = client.post(SETUP, {"code": wrong})
    assert page.status_code == 200 and "That code is wrong" in page.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert _events("auth.second_factor_failed", carol).get().details["via"] == "enrolment"
    assert to_second_factor(client.get("/admin/"), page=SETUP)


def test_later_log_ins_verify_a_code_and_refuse_a_wrong_or_replayed_one(pki, enforced, make_user, client):
    carol = make_user("carol", groups=[PKI_ADMINISTRATORS])
    device = enrol(carol)
    client.login(username="carol", password=PASSWORD)

    response = client.get("/admin/enrollment/employee/")
    assert to_second_factor(response, page=VERIFY)
    assert client.get(response["Location"]).status_code == 200
    code = app_code(device)
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    page = client.post(VERIFY, {"code": wrong, "next": "/admin/enrollment/employee/"})
    assert page.status_code == 200 and "That code is wrong" in page.content.decode()
    assert _events("auth.second_factor_failed", carol).get().details == {
        "via": "page", "reason": "That code is wrong or was used already; type the current one from your app."
    }
    assert to_second_factor(client.get("/admin/"), page=VERIFY)

    done = client.post(VERIFY, {"code": code, "next": "/admin/enrollment/employee/"})
    assert done.status_code == 302 and done["Location"] == "/admin/enrollment/employee/"
    assert client.get("/admin/enrollment/employee/").status_code == 200

    # The same code does not open a second session.
    other = _password_session("carol")
    assert "That code is wrong or was used already" in other.post(VERIFY, {"code": code}).content.decode()
    assert to_second_factor(other.get("/admin/"), page=VERIFY)


def _password_session(username):
    """A new browser session that has given the password only."""
    from django.test import Client

    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def test_too_many_wrong_codes_slow_the_next_attempt_down(pki, settings, make_user, client):
    settings.PORTAL_DEMO_2FA = True
    carol = make_user("carol", groups=[APPROVERS])
    device = enrol(carol)
    client.login(username="carol", password=PASSWORD)
    client.post(VERIFY, {"code": "000000" if app_code(device) != "000000" else "111111"})

    page = client.post(VERIFY, {"code": app_code(device)})  # right, but too soon after a wrong one
    assert "Too many wrong codes" in page.content.decode()
    assert _events("auth.second_factor_failed", carol).count() == 2


def test_a_recovery_code_works_once_and_is_audited(pki, enforced, make_user, client):
    carol = make_user("carol", groups=[KEY_RECOVERY_AGENTS])
    enrol(carol)
    client.login(username="carol", password=PASSWORD)

    done = client.post(VERIFY, {"code": "RECOVERY3", "next": "/admin/"}, follow=True)
    assert done.status_code == 200 and done.request["PATH_INFO"] == "/admin/"
    assert any("You used a recovery code; 9 left" in str(m) for m in done.context["messages"])
    assert _events("auth.recovery_code_used", carol).get().details == {"via": "page", "remaining": 9}

    again = _password_session("carol")
    page = again.post(VERIFY, {"code": "recovery3"})
    assert "That recovery code is wrong or was used already" in page.content.decode()
    assert to_second_factor(again.get("/admin/"), page=VERIFY)
    assert _events("auth.second_factor_failed", carol).count() == 1


def test_the_verify_page_sends_back_to_this_site_only(pki, enforced, make_user, client):
    carol = make_user("carol", groups=[APPROVERS])
    device = enrol(carol)
    client.login(username="carol", password=PASSWORD)
    done = client.post(VERIFY, {"code": app_code(device), "next": "https://evil.example/"})
    assert done["Location"] == "/"


# --- Employees, the exemption, the reset ---------------------------------------------------


def test_employees_need_no_second_factor(enforced, issued, alice, client):
    assert client.login(username="alice", password=PASSWORD)
    assert client.get("/").status_code == 200
    assert client.get("/recovery/").status_code == 200
    assert client.get("/tokens/").status_code == 200
    assert client.get(SETUP).status_code == 302  # nothing to set up
    assert not AuditEvent.objects.filter(action__startswith="auth.second_factor").exists()


def test_demo_accounts_are_exempt_in_development_only(pki, settings, real_demo_accounts, approver, make_user, client):
    settings.DEVELOPMENT = True
    settings.PORTAL_DEMO_2FA = False
    client.force_login(approver)
    assert client.get("/admin/").status_code == 200
    # Any other name with a trusted role is not exempt, in development neither.
    assert to_second_factor(unverified_client(make_user("approver3", groups=[APPROVERS])).get("/admin/"), page=SETUP)

    settings.PORTAL_DEMO_2FA = True
    assert to_second_factor(client.get("/admin/"), page=SETUP)

    settings.PORTAL_DEMO_2FA = False
    settings.DEVELOPMENT = False  # production: the demo approver is refused like anyone
    assert to_second_factor(client.get("/admin/"), page=SETUP)


def test_the_log_out_and_log_in_pages_stay_open(enforced, pki, make_user):
    client = unverified_client(make_user("olga", groups=[APPROVERS]))
    assert client.get("/login/").status_code == 200
    assert client.post("/logout/").status_code == 302
    assert client.get("/admin/").status_code == 302  # now to the log-in page
    assert "/admin/login/" in client.get("/admin/")["Location"]


def test_reset_second_factor_removes_the_devices_and_is_audited(enforced, pki, make_user, capsys):
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    carol = make_user("carol", groups=[APPROVERS])
    client = verified_client(carol)
    assert client.get("/admin/").status_code == 200
    with pytest.raises(CommandError, match="There is no user"):
        call_command("reset_second_factor", "nobody", "--reason", "x")
    with pytest.raises(CommandError, match="Say why"):
        call_command("reset_second_factor", "carol", "--reason", " ")

    call_command("reset_second_factor", "carol", "--reason", "Ticket 4711, phone lost, identity checked in person")
    assert "Reset the second factor of carol (2 device(s) removed)" in capsys.readouterr().out
    assert not TOTPDevice.objects.filter(user=carol).exists() and not StaticDevice.objects.filter(user=carol).exists()
    event = AuditEvent.objects.get(action="auth.second_factor_reset")
    assert event.details["username"] == "carol" and event.details["reason"].startswith("Ticket 4711")
    assert event.object_id == str(carol.pk)
    # The session verified with the old device is not verified any more: set up anew.
    assert to_second_factor(client.get("/admin/"), page=SETUP)
