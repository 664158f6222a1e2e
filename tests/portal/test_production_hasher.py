"""The one test with the production password hasher: the suite hashes with MD5 for speed
(tests/conftest.py), so this shows a log-in through the real log-in page works with the
hashers the project's settings configure (Django's PBKDF2)."""

import re

from django.contrib.auth import SESSION_KEY
from django.contrib.auth.hashers import PBKDF2PasswordHasher, get_hasher
from django.test import Client
from portal_testing import PASSWORD


def _log_in(client: Client, username: str, password: str):
    """Fill in the form /login/ shows, with its CSRF token, and send it."""
    page = client.get("/login/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="username"' in html and 'name="password"' in html
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    return client.post(
        "/login/",
        {"csrfmiddlewaretoken": token, "username": username, "password": password, "next": ""},
        follow=True,
    )


def test_a_log_in_works_with_the_production_password_hasher(db, settings, production_password_hashers, make_user):
    settings.PASSWORD_HASHERS = production_password_hashers
    assert isinstance(get_hasher(), PBKDF2PasswordHasher)

    user = make_user("alice", given_name="Alice", surname="Archer")
    user.refresh_from_db()
    assert user.password.startswith("pbkdf2_sha256$")
    assert user.password.split("$")[1] == str(PBKDF2PasswordHasher.iterations)

    client = Client(enforce_csrf_checks=True)
    wrong = _log_in(client, "alice", PASSWORD + "-wrong")
    assert wrong.status_code == 200 and wrong.redirect_chain == []
    assert wrong.context["form"].errors and SESSION_KEY not in client.session

    response = _log_in(client, "alice", PASSWORD)
    assert response.status_code == 200 and response.redirect_chain[0] == ("/", 302)
    assert client.session[SESSION_KEY] == str(user.pk)
    assert response.context["user"] == user
    user.refresh_from_db()
    assert user.password.startswith("pbkdf2_sha256$")  # not rehashed with another hasher
