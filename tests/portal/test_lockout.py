"""Lockout after repeated failed log-ins (portal/lockout.py, django-axes) and the API throttles.

On each surface (the log-in page, the admin's, HTTP Basic on the API, API tokens) five failures
lock: the sixth attempt is refused even with the right password, per account (from any address)
and per source address (for any account). The lockout is one audit event and a flood adds no
more; an administrator unlocks (command or admin), audited; a success before the limit starts
the count again.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from portal_testing import PASSWORD
from rest_framework.test import APIClient

from audit.models import AuditEvent

WRONG = "not-the-password-at-all"
ATTACKER = "192.0.2.66"
HOME = "198.51.100.7"
LIMIT = 5
API_URL = "/api/v1/requests/"


def page_log_in(client, username, password, *, url="/login/", source=ATTACKER):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=source)


def basic(username, password, *, source=ATTACKER, method="get", **kwargs):
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    client = APIClient()
    return getattr(client, method)(API_URL, HTTP_AUTHORIZATION=f"Basic {credentials}", REMOTE_ADDR=source, **kwargs)


def bearer(token, *, source=ATTACKER):
    return APIClient().get(API_URL, HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR=source)


def logged_in(response) -> bool:
    return response.status_code == 302 and SESSION_KEY in response.client.session


def events(action: str):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def assert_locked_page(response):
    assert response.status_code == 429
    body = response.content.decode()
    assert "Log-in locked" in body and "An administrator can unlock it sooner." in body
    assert response["Retry-After"] == "1800"


def assert_locked_api(response):
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "locked_out"
    assert "An administrator can unlock it sooner." in response.json()["error"]["message"]
    assert response["Retry-After"] == "1800"


# --- Five failures lock, on every surface ---------------------------------------------------


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_five_wrong_passwords_on_a_log_in_page_lock_the_account(client, alice, approver, url):
    username = "approver" if url.startswith("/admin/") else "alice"
    for _ in range(LIMIT - 1):
        refused = page_log_in(client, username, WRONG, url=url)
        assert refused.status_code == 200 and SESSION_KEY not in client.session
    assert_locked_page(page_log_in(client, username, WRONG, url=url))  # the fifth locks

    right = page_log_in(Client(), username, PASSWORD, url=url)
    assert_locked_page(right)
    assert SESSION_KEY not in right.client.session


def test_five_wrong_passwords_over_http_basic_lock_the_account(alice):
    for _ in range(LIMIT - 1):
        assert basic("alice", WRONG).status_code == 401
    assert_locked_api(basic("alice", WRONG))

    assert_locked_api(basic("alice", PASSWORD))
    assert_locked_api(basic("alice", PASSWORD, source=HOME))  # the account, from anywhere


def test_the_log_in_page_and_http_basic_count_together(client, alice):
    for _ in range(3):
        page_log_in(client, "alice", WRONG, source=f"192.0.2.{_ + 1}")
    basic("alice", WRONG, source="192.0.2.10")
    assert basic("alice", WRONG, source="192.0.2.11").status_code == 429
    assert_locked_page(page_log_in(Client(), "alice", PASSWORD, source=HOME))


@pytest.mark.parametrize(
    "body",
    [
        {"data": "x", "content_type": "text/plain"},  # no parser takes it
        {"data": "{not json", "content_type": "application/json"},
        {"data": b"--broken\r\n", "content_type": "multipart/form-data; boundary=broken"},
    ],
)
def test_a_body_that_does_not_parse_does_not_keep_a_failure_from_counting(alice, body):
    # DRF parses the body when asked for request.POST, which axes copies: the failure must count first.
    for _ in range(LIMIT):
        basic("alice", WRONG, method="post", **body)
    assert AccessAttempt.objects.get(username="alice").failures_since_start == LIMIT
    assert_locked_api(basic("alice", PASSWORD))


def test_five_unknown_tokens_lock_the_source_before_any_token_is_looked_up(alice, monkeypatch):
    from portal import authentication
    from portal.services import api_token_create

    token = api_token_create(user=alice, name="script").plaintext
    assert bearer(token).status_code == 200
    for attempt in range(LIMIT - 1):
        assert bearer(f"smp_guess{attempt}").status_code == 401
    assert_locked_api(bearer("not-even-a-token"))

    def must_not_be_called(**kwargs):
        raise AssertionError("a token was looked up for a locked source")

    monkeypatch.setattr(authentication, "api_token_authenticate", must_not_be_called)
    assert_locked_api(bearer(token))  # the right token, from the locked source
    monkeypatch.undo()
    assert bearer(token, source=HOME).status_code == 200  # a token names no account: only the source is locked
    # The source is locked for passwords too.
    assert_locked_api(basic("alice", PASSWORD))
    assert_locked_page(page_log_in(Client(), "alice", PASSWORD))


def test_revoked_and_expired_tokens_are_no_guesses(alice):
    from portal.services import api_token_create, api_token_revoke

    created = api_token_create(user=alice, name="old")
    api_token_revoke(token_id=created.token.pk, user=alice)
    for _ in range(LIMIT + 1):
        assert bearer(created.plaintext).status_code == 401
    assert not AccessAttempt.objects.exists()


def test_the_password_page_before_a_key_download_locks_too(alice, client):
    assert client.login(username="alice", password=PASSWORD)
    for _ in range(LIMIT - 1):
        assert client.post("/reauthenticate/", {"password": WRONG, "next": "/"}, REMOTE_ADDR=ATTACKER).status_code == 200
    assert_locked_page(client.post("/reauthenticate/", {"password": WRONG, "next": "/"}, REMOTE_ADDR=ATTACKER))
    assert_locked_page(client.post("/reauthenticate/", {"password": PASSWORD, "next": "/"}, REMOTE_ADDR=HOME))


# --- Per account and per source ----------------------------------------------------------


def test_an_account_is_locked_whichever_addresses_the_failures_come_from(client, alice, bob):
    for index in range(LIMIT):
        page_log_in(Client(), "alice", WRONG, source=f"203.0.113.{index + 1}")

    assert_locked_page(page_log_in(client, "alice", PASSWORD, source=HOME))
    # None of those addresses is locked: each failed once.
    assert logged_in(page_log_in(Client(), "bob", PASSWORD, source="203.0.113.1"))


def test_any_letter_case_counts_against_the_same_account(client, alice):
    for name in ("ALICE", "Alice", "aLiCe", "alicE", "ALIce"):
        page_log_in(Client(), name, WRONG, source=f"203.0.113.{len(name) + ord(name[0])}")
    assert_locked_page(page_log_in(client, "alice", PASSWORD, source=HOME))


def test_a_source_is_locked_whichever_accounts_it_tries(client, alice, bob):
    for name in ("bob", "carol", "dave", "eve", "Tr0ub4dor&3-typed-as-a-name"):
        page_log_in(Client(), name, WRONG)

    assert_locked_page(page_log_in(client, "alice", PASSWORD))  # never tried, but from that address
    assert_locked_api(basic("alice", PASSWORD))
    # bob failed once, alice never: from elsewhere both log in.
    assert logged_in(page_log_in(Client(), "alice", PASSWORD, source=HOME))
    assert logged_in(page_log_in(Client(), "bob", PASSWORD, source=HOME))


def test_a_success_before_the_limit_starts_the_count_again(client, alice):
    for _ in range(LIMIT - 1):
        page_log_in(Client(), "alice", WRONG)
    assert logged_in(page_log_in(Client(), "alice", PASSWORD))
    for _ in range(LIMIT - 1):
        assert basic("alice", WRONG).status_code == 401
    assert basic("alice", PASSWORD).status_code == 200  # HTTP Basic's success clears the count too
    for _ in range(LIMIT - 1):
        page_log_in(Client(), "alice", WRONG)
    assert logged_in(page_log_in(client, "alice", PASSWORD))


def test_an_attackers_own_account_does_not_clear_the_count_of_the_account_it_guesses(client, alice, bob):
    # bob (the attacker, from one address) guesses alice's password, logging in as himself in between.
    for _ in range(2):
        for _ in range(2):
            page_log_in(Client(), "alice", WRONG)
        assert logged_in(page_log_in(Client(), "bob", PASSWORD))
    page_log_in(Client(), "alice", WRONG)
    assert_locked_page(page_log_in(client, "alice", PASSWORD, source=HOME))


def test_the_lock_ends_after_the_cool_off(client, alice, settings):
    settings.PORTAL_LOCKOUT_COOLOFF_MINUTES = 10
    for _ in range(LIMIT):
        page_log_in(Client(), "alice", WRONG)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=9))
    assert page_log_in(Client(), "alice", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=11))
    assert logged_in(page_log_in(client, "alice", PASSWORD))


# --- Audit: the lockout is one event, and a flood adds no more -----------------------------


def test_the_lockout_is_one_audit_event_and_a_flood_adds_none(client, alice):
    for _ in range(LIMIT):
        page_log_in(Client(), "alice", WRONG)

    assert len(events("auth.login_failed")) == LIMIT
    (locked,) = events("auth.locked_out")
    assert locked.details == {
        "username": "alice",
        "locked": ["account", "source"],
        "failures": {"account": LIMIT, "source": LIMIT},
        "cooloff_minutes": 30,
        "path": "/login/",
    }
    assert locked.source_ip == ATTACKER

    before = AuditEvent.objects.count()
    for _ in range(100):
        assert page_log_in(Client(), "alice", WRONG).status_code == 429
    for _ in range(100):
        assert basic("alice", WRONG).status_code == 429
    assert AuditEvent.objects.count() == before  # refused while locked: counted nowhere, no event
    assert AccessAttempt.objects.get().failures_since_start == LIMIT


def test_two_hundred_failures_add_only_a_handful_of_events(alice):
    before = AuditEvent.objects.count()
    for attempt in range(200):
        basic("alice", f"{WRONG}-{attempt}")
    assert AuditEvent.objects.count() - before <= LIMIT + 1


def test_a_name_that_is_no_account_is_kept_only_as_a_hash(client, db):
    mistyped = "Tr0ub4dor&3-in-the-name-box"
    for _ in range(LIMIT):
        page_log_in(Client(), mistyped, WRONG)

    (locked,) = events("auth.locked_out")
    assert set(locked.details) == {"unknown_account_sha256", "locked", "failures", "cooloff_minutes", "path"}
    assert locked.details["unknown_account_sha256"] == events("auth.login_failed")[0].details["unknown_account_sha256"]
    stored = json.dumps([e.details for e in AuditEvent.objects.all()]) + json.dumps(
        list(AccessAttempt.objects.values()), default=str
    )
    assert mistyped not in stored and WRONG not in stored


def test_a_token_lockout_is_audited_once(alice):
    for attempt in range(LIMIT + 20):
        bearer(f"smp_guess{attempt}")
    (locked,) = events("auth.locked_out")
    assert locked.details["via"] == "api_token" and locked.details["locked"] == ["source"]
    assert locked.details["failures"] == {"source": LIMIT}
    assert not events("auth.login_failed")  # unknown tokens are counted, not each audited


# --- An administrator unlocks --------------------------------------------------------------


def lock_alice():
    for _ in range(LIMIT):
        page_log_in(Client(), "alice", WRONG)
    assert page_log_in(Client(), "alice", PASSWORD, source=HOME).status_code == 429


def test_unlock_account_command_lets_the_right_password_work_again(client, alice, capsys):
    lock_alice()

    call_command("unlock_account", "Alice")  # any letter case

    assert "Unlocked account Alice: 5 failed log-in(s) forgotten." in capsys.readouterr().out
    assert logged_in(page_log_in(client, "alice", PASSWORD, source=HOME))
    (unlocked,) = events("auth.unlocked")
    assert unlocked.actor_id is None
    assert unlocked.object_type == "auth.user" and unlocked.object_id == str(alice.pk)
    assert unlocked.details["username"] == "alice" and unlocked.details["failures"] == LIMIT
    assert unlocked.details["via"] == "command"


def test_unlocking_an_account_leaves_other_locked_sources_locked(client, alice, bob):
    lock_alice()
    for name in ("carol", "dave", "eve", "frank", "grace"):
        page_log_in(Client(), name, WRONG, source=HOME)
    call_command("unlock_account", "alice")
    assert page_log_in(Client(), "alice", PASSWORD, source=HOME).status_code == 429
    assert logged_in(page_log_in(client, "alice", PASSWORD, source="203.0.113.200"))


def test_unlock_account_command_unlocks_a_source(client, alice):
    lock_alice()
    call_command("unlock_account", "--source", ATTACKER)
    assert not AccessAttempt.objects.exists()
    (unlocked,) = events("auth.unlocked")
    assert {"source": ATTACKER, "failures": LIMIT, "via": "command"}.items() <= unlocked.details.items()
    assert "username" not in unlocked.details
    assert logged_in(page_log_in(client, "alice", PASSWORD))


def test_unlock_account_command_says_when_there_is_nothing_to_unlock(alice, capsys):
    call_command("unlock_account", "alice")
    assert "Nothing to unlock" in capsys.readouterr().out
    assert not events("auth.unlocked")
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Name an account"):
        call_command("unlock_account")
    with pytest.raises(CommandError, match="is not an IP address"):
        call_command("unlock_account", "--source", "somewhere")


@pytest.fixture
def pki_admin(make_user):
    from enrollment.roles import PKI_ADMINISTRATORS

    return make_user("pkiadmin", groups=[PKI_ADMINISTRATORS])


def _admin_client(user):
    from second_factor_testing import verified_client

    return verified_client(user)


CHANGELIST = "/admin/axes/accessattempt/"


@pytest.mark.parametrize("who", ["pki_admin", "superuser"])
def test_an_administrator_unlocks_from_the_admin(client, alice, make_user, request, who):
    admin_user = request.getfixturevalue("pki_admin") if who == "pki_admin" else make_user("root", superuser=True)
    lock_alice()
    browser = _admin_client(admin_user)
    page = browser.get(CHANGELIST)
    assert page.status_code == 200
    html = page.content.decode()
    assert "alice" in html and ATTACKER in html and "unlock_accounts" in html and "delete_selected" not in html

    attempt = AccessAttempt.objects.get(username="alice")
    done = browser.post(CHANGELIST, {"action": "unlock_accounts", "_selected_action": [attempt.pk]}, follow=True)

    assert "Unlocked 1 account(s)" in done.content.decode()
    assert logged_in(page_log_in(client, "alice", PASSWORD, source=HOME))
    (unlocked,) = events("auth.unlocked")
    assert unlocked.actor_id == admin_user.pk and unlocked.details["via"] == "admin"
    assert unlocked.details["username"] == "alice" and unlocked.details["failures"] == LIMIT


def test_the_admin_unlocks_a_source(client, alice, pki_admin):
    lock_alice()
    browser = _admin_client(pki_admin)
    attempt = AccessAttempt.objects.get(username="alice")
    browser.post(CHANGELIST, {"action": "unlock_sources", "_selected_action": [attempt.pk]})
    assert logged_in(page_log_in(client, "alice", PASSWORD))
    assert events("auth.unlocked")[0].details["source"] == ATTACKER


def test_others_cannot_see_or_unlock(alice, approver, auditor):
    lock_alice()
    attempt = AccessAttempt.objects.get(username="alice")
    for user in (approver, auditor):
        browser = _admin_client(user)
        assert browser.get(CHANGELIST).status_code == 403
        browser.post(CHANGELIST, {"action": "unlock_accounts", "_selected_action": [attempt.pk]})
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()
    assert not events("auth.unlocked")


def test_the_admin_cannot_delete_or_change_an_attempt(alice, pki_admin):
    lock_alice()
    browser = _admin_client(pki_admin)
    attempt = AccessAttempt.objects.get(username="alice")
    assert browser.post(f"{CHANGELIST}{attempt.pk}/delete/", {"post": "yes"}).status_code == 403
    assert browser.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"})
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()


# --- API throttles -------------------------------------------------------------------------


def test_the_api_throttles_anonymous_clients_per_address(db, settings):
    settings.PORTAL_API_THROTTLE_ANON = "3/minute"
    for _ in range(3):
        assert APIClient().get("/api/v1/ca/", REMOTE_ADDR=ATTACKER).status_code == 200
    throttled = APIClient().get("/api/v1/ca/", REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert throttled.status_code == 429 and throttled.json()["error"]["code"] == "throttled"
    assert int(throttled["Retry-After"]) > 0
    assert APIClient().get("/api/v1/ca/", REMOTE_ADDR=HOME).status_code == 200


def test_the_api_throttles_each_account(alice, bob, settings):
    settings.PORTAL_API_THROTTLE_USER = "3/minute"
    for _ in range(3):
        assert basic("alice", PASSWORD).status_code == 200
    assert basic("alice", PASSWORD, source=HOME).json()["error"]["code"] == "throttled"
    assert basic("bob", PASSWORD).status_code == 200


def test_throttles_can_be_turned_off(alice, settings):
    settings.PORTAL_API_THROTTLE_USER = "off"
    settings.PORTAL_API_THROTTLE_ANON = "off"
    for _ in range(5):
        assert basic("alice", PASSWORD).status_code == 200


@pytest.mark.parametrize(
    "name, value, error",
    [
        ("PORTAL_LOCKOUT_COOLOFF_MINUTES", 0, "portal.E020"),
        ("PORTAL_API_THROTTLE_ANON", "lots", "portal.E021"),
        ("PORTAL_API_THROTTLE_USER", "10/fortnight", "portal.E021"),
    ],
)
def test_bad_settings_are_system_check_errors(settings, name, value, error):
    from django.core.checks import run_checks

    setattr(settings, name, value)
    assert error in {message.id for message in run_checks(tags=["portal_settings"])}


def test_the_lockout_backend_comes_first(settings):
    assert settings.AUTHENTICATION_BACKENDS[0] == "portal.lockout.LockoutBackend"
    assert settings.AXES_FAILURE_LIMIT == LIMIT
