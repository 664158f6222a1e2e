"""What a superuser may do to other people's accounts in the admin (portal/accounts.py).

Setting an employee's password would let one person log in as them and download their waiting
PKCS#12 or ask for recovery of their keys, so it is refused; other accounts' passwords are set
under audit. Account changes are audited with old → new; deactivation is offboarding's.
"""

from __future__ import annotations

import pytest
from portal_testing import PASSWORD

from audit.models import AuditEvent

NEW_PASSWORD = "a-brand-new-password-42"


@pytest.fixture
def superuser_client(client, make_user):
    make_user("root", superuser=True, employee=False)
    assert client.login(username="root", password=PASSWORD)
    return client


def _password_form(user) -> str:
    return f"/admin/auth/user/{user.pk}/password/"


def _set_password(client, user):
    return client.post(
        _password_form(user), {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}
    )


def test_a_superuser_cannot_set_an_employees_password(superuser_client, alice):
    before = alice.password
    for response in (superuser_client.get(_password_form(alice)), _set_password(superuser_client, alice)):
        assert response.status_code == 302 and response.url == f"/admin/auth/user/{alice.pk}/change/"
    alice.refresh_from_db()
    assert alice.password == before and not alice.check_password(NEW_PASSWORD)
    assert not AuditEvent.objects.filter(action="auth.password_set").exists()
    page = superuser_client.get(f"/admin/auth/user/{alice.pk}/change/").content.decode()
    assert "has an employee record: only its owner sets its password" in page


def test_a_superuser_sets_a_service_accounts_password_under_audit(superuser_client, make_user):
    service = make_user("break-glass", employee=False)

    response = _set_password(superuser_client, service)

    assert response.status_code == 302, response.content.decode()[:1500]
    service.refresh_from_db()
    assert service.check_password(NEW_PASSWORD)
    event = AuditEvent.objects.get(action="auth.password_set")
    assert (event.actor.username, event.object_id, event.details) == ("root", str(service.pk), {"username": "break-glass"})
    assert NEW_PASSWORD not in str(event.details)


def test_account_changes_are_audited_and_deactivation_is_not_a_tick_box(superuser_client, make_user):
    service = make_user("svc", employee=False)
    form = superuser_client.get(f"/admin/auth/user/{service.pk}/change/").context["adminform"].form
    data = {name: form.initial.get(name) or "" for name in ("username", "first_name", "last_name", "email")}
    joined = form.initial["date_joined"]
    data.update(date_joined_0=f"{joined:%Y-%m-%d}", date_joined_1=f"{joined:%H:%M:%S}")
    data.update(email="svc-new@example.org")  # no is_active: the box would untick it, were it editable

    response = superuser_client.post(f"/admin/auth/user/{service.pk}/change/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    service.refresh_from_db()
    assert service.email == "svc-new@example.org" and service.is_active
    event = AuditEvent.objects.get(action="auth.account_changed")
    assert event.details == {"changes": {"email": ["svc@example.org", "svc-new@example.org"]}}


def test_an_account_created_in_the_admin_is_audited(superuser_client):
    response = superuser_client.post(
        "/admin/auth/user/add/",
        {"username": "newcomer", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 302, response.content.decode()[:1500]
    assert AuditEvent.objects.get(action="auth.account_created").details == {"username": "newcomer"}
