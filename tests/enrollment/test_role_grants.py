"""Trusted roles are granted by two people and every change is in the audit chain (trusted-roles issue:
"Role grants ... are audited events in the chain, and granting a trusted role needs a second person")."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from portal_testing import PASSWORD

from audit.models import AuditEvent
from core.exceptions import InvalidState, NotAllowed, SeparationOfDuties
from enrollment.roles import APPROVERS, PKI_ADMINISTRATORS
from enrollment.services.role_grants import role_grant_confirm, role_grant_request, role_revoke


@pytest.fixture
def admins(make_user):
    return (
        make_user("petra", groups=[PKI_ADMINISTRATORS], given_name="Petra", surname="Admin"),
        make_user("paul", groups=[PKI_ADMINISTRATORS], given_name="Paul", surname="Admin"),
    )


def _roles(user) -> set[str]:
    return set(type(user).objects.get(pk=user.pk).groups.values_list("name", flat=True))


def test_a_trusted_role_needs_a_second_person(db, admins, bob):
    petra, paul = admins
    request = role_grant_request(user=bob, role=APPROVERS, actor=petra, reason="new approver")
    assert APPROVERS not in _roles(bob)
    with pytest.raises(SeparationOfDuties):
        role_grant_confirm(request_id=request.pk, actor=petra)
    role_grant_confirm(request_id=request.pk, actor=paul)
    assert APPROVERS in _roles(bob) and type(bob).objects.get(pk=bob.pk).is_staff
    granted = AuditEvent.objects.get(action="auth.role_granted")
    assert (granted.actor, granted.details["role"], granted.details["requested_by"]) == (paul, APPROVERS, "petra")
    assert AuditEvent.objects.filter(action="auth.role_grant_requested", actor=petra).count() == 1
    with pytest.raises(InvalidState):
        role_grant_confirm(request_id=request.pk, actor=paul)


def test_the_one_who_would_get_the_role_cannot_grant_it(db, admins, make_user):
    petra, paul = admins
    request = role_grant_request(user=paul, role=APPROVERS, actor=petra, reason="also approves")
    with pytest.raises(SeparationOfDuties):
        role_grant_confirm(request_id=request.pk, actor=paul)


def test_only_pki_administrators_ask_and_only_superusers_handle_superuser(db, admins, approver, bob, make_user):
    petra, _ = admins
    with pytest.raises(NotAllowed):
        role_grant_request(user=bob, role=APPROVERS, actor=approver, reason="x")
    with pytest.raises(NotAllowed):
        role_grant_request(user=bob, role="superuser", actor=petra, reason="x")
    root, root2 = make_user("root", superuser=True), make_user("root2", superuser=True)
    request = role_grant_request(user=bob, role="superuser", actor=root, reason="break-glass")
    with pytest.raises(NotAllowed):
        role_grant_confirm(request_id=request.pk, actor=petra)
    role_grant_confirm(request_id=request.pk, actor=root2)
    assert type(bob).objects.get(pk=bob.pk).is_superuser


def test_taking_a_role_away_is_one_audited_step(db, admins, approver):
    petra, _ = admins
    role_revoke(user=approver, role=APPROVERS, actor=petra, reason="changed team")
    assert APPROVERS not in _roles(approver)
    assert AuditEvent.objects.get(action="auth.role_revoked").details["role"] == APPROVERS


def test_the_user_admin_does_not_change_roles(db, admins, bob, client, make_user):
    make_user("root", superuser=True)
    assert client.login(username="root", password=PASSWORD)
    page = client.get(f"/admin/auth/user/{bob.pk}/change/")
    assert page.status_code == 200 and 'name="groups"' not in page.content.decode()
    assert 'name="is_superuser"' not in page.content.decode()


def test_the_admin_asks_and_a_second_administrator_grants(db, admins, bob, client):
    from enrollment.models import RoleGrantRequest

    assert client.login(username="petra", password=PASSWORD)
    client.post("/admin/enrollment/rolegrantrequest/add/", {"username": "bob", "role": APPROVERS, "reason": "new"})
    request = RoleGrantRequest.objects.get(user=bob)
    client.post("/admin/enrollment/rolegrantrequest/", {"action": "grant_selected", "_selected_action": [request.pk]})
    assert APPROVERS not in _roles(bob)  # petra asked: she cannot be the second person
    client.logout()
    assert client.login(username="paul", password=PASSWORD)
    client.post("/admin/enrollment/rolegrantrequest/", {"action": "grant_selected", "_selected_action": [request.pk]})
    assert APPROVERS in _roles(bob)


def test_the_operator_grants_from_the_command_line(db, bob):
    call_command("grant_role", "bob", PKI_ADMINISTRATORS, "--reason", "first PKI administrator")
    assert PKI_ADMINISTRATORS in _roles(bob)
    assert AuditEvent.objects.get(action="auth.role_granted").details["via"] == "manage.py grant_role"
    with pytest.raises(CommandError, match="holds the role"):
        call_command("grant_role", "bob", PKI_ADMINISTRATORS, "--reason", "again")
