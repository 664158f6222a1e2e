"""Helpers for the second-factor tests: an enrolled authenticator, its current code, a verified session."""

from __future__ import annotations

import pytest
from django.test import Client


def enrol(user):
    """A confirmed authenticator app for `user` (what the set-up page leaves behind), and ten recovery codes."""
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    recovery = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    for index in range(10):
        StaticToken.objects.create(device=recovery, token=f"recovery{index}")
    return device


def app_code(device, *, steps_ahead: int = 0) -> str:
    """The code the authenticator app shows now (`steps_ahead`: 30-second steps later), as django-otp computes it."""
    from django_otp.oath import totp

    device.refresh_from_db()
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift + steps_ahead):0{device.digits}d}"


def fresh_app_code(device) -> str:
    """A current code that this device has not accepted yet: a TOTP code works once (replays are refused),
    and tests may need several within one 30-second step; the tests of replay use app_code."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1, throttling_failure_count=0)
    return app_code(device)


def verified_client(user, device=None) -> Client:
    """A browser session of `user` that has passed the second factor (logged in, then verified)."""
    from django_otp import DEVICE_ID_SESSION_KEY

    device = device or enrol(user)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def unverified_client(user) -> Client:
    """A browser session of `user` that has given the password only."""
    client = Client()
    client.force_login(user)
    return client


# --- Fixtures and checks shared by the second-factor tests (imported by name) -------------------

SETUP = "/second-factor/"
VERIFY = "/second-factor/verify/"
AGENT_PASSPHRASE = "agent-passphrase-for-second-factor-tests"

# Every trusted role, as the keyword arguments of make_user.
ROLES = {
    "approver": {"groups": ["Approvers"]},
    "auditor": {"groups": ["Auditors"]},
    "pki administrator": {"groups": ["PKI administrators"]},
    "agent": {"groups": ["Key recovery agents"]},
    "superuser": {"superuser": True},
}


@pytest.fixture
def enforced(settings):
    """Nobody is exempt (PORTAL_DEMO_2FA: the demo accounts neither); wrong codes are not slowed down."""
    settings.PORTAL_DEMO_2FA = True
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


@pytest.fixture
def real_demo_accounts(monkeypatch):
    """The exemption's own list of names (tests/conftest.py exempts every name for the other tests)."""
    from enrollment.demo_accounts import DEMO_USERNAMES

    monkeypatch.setattr("portal.second_factor.DEMO_USERNAMES", DEMO_USERNAMES)


@pytest.fixture
def role_user(make_user):
    """A user holding `role` (a key of ROLES), named `name` or after the role."""

    def make(role: str, name: str | None = None):
        return make_user(name or f"sf-{role.replace(' ', '-')}", **ROLES[role])

    return make


def to_second_factor(response, *, page=None) -> bool:
    """Sent to the second-factor page `page` (SETUP or VERIFY; None: either)."""
    if response.status_code != 302:
        return False
    path = response["Location"].split("?")[0]
    return path in (SETUP, VERIFY) if page is None else path == page


def agent_p12(pki) -> bytes:
    """The test agent's key and certificate as the PKCS#12 an agent uploads, under AGENT_PASSPHRASE."""
    from enrollment.pki.pkcs12 import pkcs12_bundle

    material = pki["material"]
    return pkcs12_bundle(
        key=material.kra_key, certificate=material.kra, chain=[], friendly_name="agent", passphrase=AGENT_PASSPHRASE
    )
