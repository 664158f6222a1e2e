"""API tokens: created once in plaintext, stored as a hash, revocable, expiring; the page and the API."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from api_testing import basic_client, token_client
from django.db import connection
from django.test import Client
from django.utils import timezone
from portal_testing import PASSWORD
from rest_framework.test import APIClient

from audit.models import AuditEvent
from portal.models import ApiToken


def _create(user, **body) -> dict:
    response = basic_client(user).post("/api/v1/tokens/", {"name": "nightly export", **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _database_text() -> str:
    """Every row of every table, as text: what someone with a copy of the database sees."""
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            rows.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(rows)


def test_the_token_is_shown_once_and_only_its_hash_is_stored(pki, alice):
    import hashlib

    created = _create(alice)
    token = created["token"]

    assert token.startswith("smp_") and len(token) >= 40
    assert created["prefix"] == token[:12] and created["expires_at"]
    stored = ApiToken.objects.get(pk=created["id"])
    assert stored.key_hash == hashlib.sha256(token.encode()).hexdigest()
    database = _database_text()
    assert token not in database and token[12:] not in database
    assert stored.key_hash in database
    listed = basic_client(alice).get("/api/v1/tokens/").json()
    assert listed["count"] == 1 and "token" not in listed["results"][0]
    assert token not in str(listed)
    event = AuditEvent.objects.get(action="token.created")
    assert event.actor_name == "alice" and event.details["prefix"] == created["prefix"]


@pytest.mark.parametrize("keyword", ["Bearer", "Token", "bearer"])
def test_a_token_authenticates_as_its_owner(pki, alice, keyword):
    token = _create(alice)["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {token}")

    response = client.post("/api/v1/requests/", {"key_type": "ec-p256"}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["submitted_by"] == "alice"
    assert ApiToken.objects.get().last_used_at is not None


def test_a_token_has_its_owners_permissions_only(pki, alice, bob, approver, issue):
    certificate = issue(alice, approver)
    bobs = token_client(_create(bob)["token"])

    assert bobs.get(f"/api/v1/certificates/{certificate.serial}/").status_code == 404
    assert bobs.get("/api/v1/employees/").status_code == 403
    assert bobs.get("/api/v1/certificates/").json()["count"] == 0


def test_a_revoked_token_is_refused(pki, alice):
    created = _create(alice)
    client = token_client(created["token"])
    assert client.get("/api/v1/certificates/").status_code == 200

    response = basic_client(alice).delete(f"/api/v1/tokens/{created['id']}/")
    assert response.status_code == 204

    response = client.get("/api/v1/certificates/")
    assert response.status_code == 401
    assert response.json()["error"] == {"code": "authentication_failed", "message": "This token has been revoked.", "fields": {}}
    assert response["WWW-Authenticate"]
    assert AuditEvent.objects.filter(action="token.revoked", actor_name="alice").count() == 1
    # Again: nothing changes, no second event.
    assert basic_client(alice).delete(f"/api/v1/tokens/{created['id']}/").status_code == 204
    assert AuditEvent.objects.filter(action="token.revoked").count() == 1
    assert basic_client(alice).get("/api/v1/tokens/").json()["results"][0]["revoked"] is True


def test_an_expired_token_is_refused(pki, alice):
    created = _create(alice, expires_in_days=1)
    ApiToken.objects.filter(pk=created["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = token_client(created["token"]).get("/api/v1/certificates/")

    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "header",
    ["Bearer smp_not-a-real-token", "Bearer", "Bearer two parts", "Token something-else", "Bearer \u00e9t\u00e9"],
)
def test_unknown_or_malformed_tokens_are_401_not_500(pki, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/certificates/")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_disabled_accounts_token_is_refused(pki, alice):
    token = _create(alice)["token"]
    alice.is_active = False
    alice.save()

    assert token_client(token).get("/api/v1/certificates/").status_code == 401


def test_nobody_revokes_someone_elses_token(pki, alice, bob, approver):
    created = _create(alice)

    for user in (bob, approver):
        assert basic_client(user).delete(f"/api/v1/tokens/{created['id']}/").status_code == 404
    assert basic_client(bob).get("/api/v1/tokens/").json()["count"] == 0
    assert token_client(created["token"]).get("/api/v1/certificates/").status_code == 200
    assert basic_client(alice).delete("/api/v1/tokens/99999999999999999999/").status_code == 404


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"name": ""}, "name", "Give the token a name"),
        ({"name": "x" * 101}, "name", "100 characters"),
        ({"name": "ci", "expires_in_days": 0}, "expires_in_days", "between 1 and 730 days"),
        ({"name": "ci", "expires_in_days": 731}, "expires_in_days", "between 1 and 730 days"),
        ({"name": "ci", "expires_in_days": "soon"}, "expires_in_days", "valid integer"),
    ],
)
def test_token_input_is_checked(pki, alice, body, field, message):
    response = basic_client(alice).post("/api/v1/tokens/", body, format="json")

    assert response.status_code == 400
    assert message in " ".join(response.json()["error"]["fields"][field])
    assert not ApiToken.objects.exists()


# --- Sessions: CSRF -------------------------------------------------------------------------


def test_session_calls_need_the_csrf_token_bearer_calls_do_not(pki, alice):
    browser = Client(enforce_csrf_checks=True)
    assert browser.login(username="alice", password=PASSWORD)

    refused = browser.post("/api/v1/tokens/", {"name": "from the browser"}, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]["message"]
    assert not ApiToken.objects.exists()

    page = browser.get("/tokens/")
    csrf = page.cookies["csrftoken"].value
    accepted = browser.post(
        "/api/v1/tokens/", {"name": "from the browser"}, content_type="application/json", HTTP_X_CSRFTOKEN=csrf
    )
    assert accepted.status_code == 201

    # A token needs no CSRF token (no cookie is involved), and reads never do.
    token = token_client(accepted.json()["token"])
    token.enforce_csrf_checks = True
    assert token.post("/api/v1/requests/", {"key_type": "ec-p256"}, format="json").status_code == 201
    assert browser.get("/api/v1/tokens/").status_code == 200


# --- The self-service page ------------------------------------------------------------------


@pytest.fixture
def alice_browser(alice):
    browser = Client(enforce_csrf_checks=True)
    assert browser.login(username="alice", password=PASSWORD)
    return browser


def _csrf(browser) -> str:
    return browser.get("/tokens/").cookies["csrftoken"].value


def test_the_page_needs_a_login(db):
    response = Client().get("/tokens/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_page_creates_a_token_and_shows_it_once(pki, alice_browser):
    response = alice_browser.post(
        "/tokens/", {"name": "HR sync", "expires_in_days": "30", "csrfmiddlewaretoken": _csrf(alice_browser)}
    )

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0") or "no-cache" in response["Cache-Control"]
    page = response.content.decode()
    token = re.search(r'<code id="new-token">(smp_[^<]+)</code>', page).group(1)
    stored = ApiToken.objects.get()
    assert stored.name == "HR sync" and 29 <= (stored.expires_at - timezone.now()).days <= 30
    assert token_client(token).get("/api/v1/certificates/").status_code == 200
    again = alice_browser.get("/tokens/").content.decode()
    assert token not in again and stored.prefix in again and "HR sync" in again


def test_reloading_the_answer_page_does_not_create_a_second_token(pki, alice_browser):
    page = alice_browser.get("/tokens/").content.decode()
    submission = re.search(r'name="submission" value="([^"]+)"', page).group(1)
    form = {
        "name": "HR sync", "expires_in_days": "30", "submission": submission,
        "csrfmiddlewaretoken": alice_browser.cookies["csrftoken"].value,
    }
    first = alice_browser.post("/tokens/", form).content.decode()
    reloaded = alice_browser.post("/tokens/", form).content.decode()

    assert 'id="new-token"' in first
    assert 'id="new-token"' not in reloaded and "This form was sent already" in reloaded
    assert ApiToken.objects.count() == 1
    fresh = re.search(r'name="submission" value="([^"]+)"', reloaded).group(1)
    assert fresh != submission
    refused = alice_browser.post("/tokens/", {**form, "submission": fresh, "expires_in_days": "5"}).content.decode()
    assert "Select a valid choice" in refused and ApiToken.objects.count() == 1
    # The corrected form (same page, same hidden value) goes through.
    alice_browser.post("/tokens/", {**form, "submission": fresh})
    assert ApiToken.objects.count() == 2


def test_the_page_says_what_is_wrong(pki, alice_browser):
    response = alice_browser.post("/tokens/", {"name": "", "expires_in_days": "5", "csrfmiddlewaretoken": _csrf(alice_browser)})

    assert response.status_code == 200
    page = response.content.decode()
    assert "This field is required." in page and "Select a valid choice" in page
    assert not ApiToken.objects.exists()


def test_the_page_revokes_own_tokens_only(pki, alice, bob, alice_browser):
    from portal.services import api_token_create

    own = api_token_create(user=alice, name="old laptop")
    bobs = api_token_create(user=bob, name="bob's")
    csrf = _csrf(alice_browser)

    response = alice_browser.post(f"/tokens/{own.token.pk}/revoke/", {"csrfmiddlewaretoken": csrf}, follow=True)
    assert "is revoked" in response.content.decode()
    assert ApiToken.objects.get(pk=own.token.pk).revoked
    assert token_client(own.plaintext).get("/api/v1/certificates/").status_code == 401

    response = alice_browser.post(f"/tokens/{bobs.token.pk}/revoke/", {"csrfmiddlewaretoken": csrf}, follow=True)
    assert "You have no token" in response.content.decode()
    assert not ApiToken.objects.get(pk=bobs.token.pk).revoked
    # Without the CSRF token the form post is refused.
    assert Client(enforce_csrf_checks=True).post(f"/tokens/{own.token.pk}/revoke/").status_code in (302, 403)
    assert alice_browser.post(f"/tokens/{own.token.pk}/revoke/").status_code == 403


def test_the_navigation_links_to_the_page(pki, alice_browser):
    assert 'href="/tokens/"' in alice_browser.get("/").content.decode()


def test_the_token_is_not_logged(pki, alice, caplog):
    import logging

    with caplog.at_level(logging.DEBUG):
        created = _create(alice)
        client = token_client(created["token"])
        client.get("/api/v1/certificates/")
        client.get("/api/v1/certificates/nonexistent/")
        basic_client(alice).delete(f"/api/v1/tokens/{created['id']}/")
        client.get("/api/v1/certificates/")

    assert caplog.records  # the 404 and 401 were logged ...
    assert created["token"] not in caplog.text and created["token"][12:] not in caplog.text  # ... without the token


@pytest.mark.parametrize("credentials", ["alice\x00:x", "alice:pass\x00word", "x" * 200 + ":y", "no-colon"])
def test_impossible_basic_credentials_are_401_not_500(pki, alice, credentials):
    import base64

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(credentials.encode()).decode())

    response = client.get("/api/v1/certificates/")

    assert response.status_code == 401 and response.json()["error"]["code"] == "authentication_failed"


def test_an_api_url_that_names_nothing_is_a_json_404(client, db):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert client.get("/no-such-page/").status_code == 404


def test_superusers_see_tokens_in_the_admin_but_never_the_secret(client, make_user):
    from portal.services import api_token_create

    admin_user = make_user("root", superuser=True)
    owner = make_user("scripter")
    created = api_token_create(user=owner, name="hr-sync")
    client.force_login(admin_user)
    page = client.get("/admin/portal/apitoken/")
    assert page.status_code == 200 and b"hr-sync" in page.content
    detail = client.get(f"/admin/portal/apitoken/{created.token.pk}/change/")
    assert detail.status_code == 200
    assert created.plaintext.encode() not in detail.content and created.token.key_hash.encode() not in detail.content
