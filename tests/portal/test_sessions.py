"""Session rules: idle timeouts (shorter for trusted roles), an absolute lifetime, a fresh
password before a key is released, and local passwords of at least 12 characters."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from portal_testing import PASSWORD

from audit.models import AuditEvent
from core.sessions import AUTHENTICATED_AT, LAST_SEEN_AT


def _log_in(client, username: str):
    assert client.login(username=username, password=PASSWORD)
    return client


def _age_session(client, *, authenticated: int = 0, seen: int = 0) -> None:
    """Move the session's clocks `authenticated` and `seen` seconds into the past."""
    session = client.session
    now = int(time.time())
    session[AUTHENTICATED_AT] = now - authenticated
    session[LAST_SEEN_AT] = now - seen
    session.save()


def _logged_in(client) -> bool:
    return client.get("/").status_code == 200


def test_a_trusted_role_is_logged_out_after_30_idle_minutes(db, approver, client):
    _log_in(client, "approver")
    _age_session(client, authenticated=29 * 60, seen=29 * 60)
    assert _logged_in(client)
    _age_session(client, authenticated=31 * 60, seen=31 * 60)
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/login/")
    assert "30 minutes without activity" in response.content.decode()
    assert not _logged_in(client)


def test_an_employee_keeps_a_longer_idle_timeout(db, alice, client, settings):
    _log_in(client, "alice")
    _age_session(client, authenticated=31 * 60, seen=31 * 60)
    assert _logged_in(client)
    _age_session(client, authenticated=(settings.PORTAL_SESSION_IDLE_MINUTES + 1) * 60,
                 seen=(settings.PORTAL_SESSION_IDLE_MINUTES + 1) * 60)
    assert not _logged_in(client)


def test_no_session_outlives_its_absolute_lifetime(db, alice, client, settings):
    _log_in(client, "alice")
    _age_session(client, authenticated=settings.PORTAL_SESSION_MAX_HOURS * 3600 + 60, seen=10)
    assert not _logged_in(client)
    assert settings.SESSION_COOKIE_AGE == settings.PORTAL_SESSION_MAX_HOURS * 3600


def test_a_key_download_asks_for_the_password_again_after_a_few_minutes(issued, alice, client):
    url = f"/certificates/{issued.serial}/pkcs12/"
    _log_in(client, "alice")
    assert client.get(url).status_code == 200  # just logged in
    _age_session(client, authenticated=6 * 60, seen=10)
    asked = client.get(url)
    assert asked.status_code == 302 and asked["Location"].startswith("/reauthenticate/?next=")
    refused = client.post("/reauthenticate/", {"password": "not-the-password", "next": url})
    assert refused.status_code == 200 and "That is not your password." in refused.content.decode()
    assert client.get(url).status_code == 302
    confirmed = client.post("/reauthenticate/", {"password": PASSWORD, "next": url})
    assert confirmed.status_code == 302 and confirmed["Location"] == url
    assert client.get(url).status_code == 200
    assert AuditEvent.objects.filter(action="auth.reauthenticated", actor=alice).count() == 1
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 1


def test_reauthentication_sends_nobody_elsewhere(db, alice, client):
    _log_in(client, "alice")
    response = client.post("/reauthenticate/", {"password": PASSWORD, "next": "https://evil.example/steal"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_a_recovered_key_download_asks_for_the_password_again(pki, approved_recovery_for_alice, client):
    request = approved_recovery_for_alice
    url = f"/recovery/{request.pk}/history/"
    _log_in(client, "alice")
    _age_session(client, authenticated=6 * 60, seen=10)
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/reauthenticate/")


@pytest.fixture
def approved_recovery_for_alice(issued, alice, approver, approver2):
    from escrow.services.recovery import recovery_request_approve, recovery_request_create

    request = recovery_request_create(requested_by=alice, reason="lost", serial=issued.serial)
    recovery_request_approve(request_id=request.pk, approver=approver)
    return recovery_request_approve(request_id=request.pk, approver=approver2)


@pytest.mark.parametrize("password", ["short-pw-1", "12345678901234"])
def test_local_passwords_need_twelve_characters_and_not_only_digits(password):
    with pytest.raises(ValidationError):
        validate_password(password)


def test_a_long_password_is_accepted():
    validate_password("a-long-enough-passphrase")


def test_log_out_everywhere_ends_every_session_and_revokes_the_tokens(db, alice, bob):
    from django.test import Client

    from portal.models import ApiToken
    from portal.services import api_token_create

    laptop, phone, bobs = Client(), Client(), Client()
    for client, user in ((laptop, "alice"), (phone, "alice"), (bobs, "bob")):
        _log_in(client, user)
    token = api_token_create(user=alice, name="script").token
    assert _logged_in(laptop) and _logged_in(phone)

    response = phone.post("/logout/everywhere/", follow=True)

    assert response.redirect_chain[-1][0].startswith("/login/")
    assert "Every session of your account has ended and 1 API token revoked" in response.content.decode()
    assert not _logged_in(phone)
    assert not _logged_in(laptop)  # the other device's session ends at its next request
    assert _logged_in(bobs)  # nobody else's
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    event = AuditEvent.objects.get(action="auth.logged_out_everywhere")
    assert (event.actor, event.details) == (alice, {"generation": 1, "tokens_revoked": 1})
    _log_in(laptop, "alice")  # a new log-in starts under the new generation
    assert _logged_in(laptop)
    assert laptop.get("/logout/everywhere/").status_code == 405  # a link cannot do it
