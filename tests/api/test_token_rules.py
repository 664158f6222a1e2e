"""Tokens never outlive or outrank what made them (trusted-roles finding 6).

"a 1-day token created a 730-day token that outlived revoking its parent; tokens survive a
password change": only a password log-in makes tokens, and a token dies with the password,
roles and account state it was made under.
"""

from __future__ import annotations

from api_testing import basic_client, token_client

from audit.models import AuditEvent
from portal.models import ApiToken


def _token(user, **body) -> str:
    response = basic_client(user).post("/api/v1/tokens/", {"name": "script", **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["token"]


def _works(token: str) -> bool:
    return token_client(token).get("/api/v1/certificates/").status_code == 200


def test_a_token_cannot_create_tokens(pki, alice):
    parent = _token(alice, expires_in_days=1)
    refused = token_client(parent).post("/api/v1/tokens/", {"name": "child", "expires_in_days": 730}, format="json")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert "cannot create tokens" in refused.json()["error"]["message"]
    assert ApiToken.objects.filter(user=alice).count() == 1


def test_a_password_change_revokes_the_tokens(pki, alice):
    token = _token(alice)
    assert _works(token)
    alice.set_password("a-new-passphrase-of-alice")
    alice.save()
    assert ApiToken.objects.get(user=alice).revoked_at is not None
    assert not _works(token)
    revoked = AuditEvent.objects.get(action="token.revoked")
    assert revoked.details["reason"] == "password, roles or account changed"


def test_a_role_change_revokes_the_tokens(pki, alice):
    from django.contrib.auth.models import Group

    from enrollment.roles import AUDITORS

    token = _token(alice)
    alice.groups.add(Group.objects.get(name=AUDITORS))
    assert not _works(token)
    assert ApiToken.objects.get(user=alice).revoked_at is not None


def test_a_role_taken_from_the_groups_side_revokes_the_tokens(pki, approver):
    from django.contrib.auth.models import Group

    from enrollment.roles import APPROVERS

    token = _token(approver)
    Group.objects.get(name=APPROVERS).user_set.remove(approver)
    assert ApiToken.objects.get(user=approver).revoked_at is not None
    assert token_client(token).get("/api/v1/certificates/").status_code == 401


def test_offboarding_revokes_the_tokens(pki, alice, approver):
    from enrollment.services.employees import employee_offboard

    token = _token(alice)
    employee_offboard(user=alice, actor=approver)
    assert ApiToken.objects.get(user=alice).revoked_at is not None
    assert not _works(token)


def test_a_change_made_behind_the_portal_s_back_still_voids_the_token(pki, alice):
    """A password written straight to the table (no signal): the token's own check catches it."""
    from django.contrib.auth.hashers import make_password

    token = _token(alice)
    type(alice).objects.filter(pk=alice.pk).update(password=make_password("changed-in-the-database"))
    response = token_client(token).get("/api/v1/certificates/")
    assert response.status_code == 401
    assert "password or roles changed" in response.json()["error"]["message"]
    assert ApiToken.objects.get(user=alice).revoked_at is not None


def test_logging_in_does_not_revoke_the_tokens(pki, alice, client):
    from portal_testing import PASSWORD

    token = _token(alice)
    assert client.login(username="alice", password=PASSWORD)  # saves last_login
    assert _works(token)
