"""Offboarding an account with a trusted role needs two PKI administrators; only a superuser
offboards a superuser; removing the last approvers key recovery needs says what it costs.

Reproduces the finding "approvers deactivate superusers, auditors and other approvers through
offboarding; offboarding the only other approver makes every recovery impossible".
"""

from __future__ import annotations

import pytest
from portal_testing import PASSWORD

from audit.models import AuditEvent
from core.exceptions import InvalidState, NotAllowed, SeparationOfDuties
from enrollment.models import OffboardingRequest
from enrollment.services.employees import employee_offboard, offboarding_request_create


@pytest.fixture
def pki_admins(make_user):
    from enrollment.roles import PKI_ADMINISTRATORS

    return (
        make_user("petra", groups=[PKI_ADMINISTRATORS], given_name="Petra", surname="Admin"),
        make_user("paul", groups=[PKI_ADMINISTRATORS], given_name="Paul", surname="Admin"),
    )


@pytest.fixture
def third_approver(make_user):
    from enrollment.roles import APPROVERS

    return make_user("approver3", groups=[APPROVERS], given_name="Ada", surname="Approver")


def _fresh(user):
    return type(user).objects.get(pk=user.pk)


def test_an_approver_cannot_offboard_trusted_accounts(pki, approver, approver2, auditor, make_user):
    root = make_user("root", superuser=True)
    for target in (approver2, auditor, root):
        with pytest.raises(NotAllowed):
            employee_offboard(user=target, actor=approver)
        assert _fresh(target).is_active


def test_two_pki_administrators_offboard_a_trusted_account(pki, pki_admins, auditor):
    petra, paul = pki_admins
    with pytest.raises(NotAllowed, match="needs two PKI administrators"):
        employee_offboard(user=auditor, actor=petra)
    request = offboarding_request_create(user=auditor, actor=petra, reason="left the company")
    with pytest.raises(SeparationOfDuties, match="another PKI administrator must confirm"):
        employee_offboard(user=auditor, actor=petra)
    assert _fresh(auditor).is_active
    employee_offboard(user=auditor, actor=paul)
    assert not _fresh(auditor).is_active
    request.refresh_from_db()
    assert (request.confirmed_by, request.confirmed_at is not None) == (paul, True)
    offboarded = AuditEvent.objects.get(action="employee.offboarded")
    assert (offboarded.actor, offboarded.details["requested_by"]) == (paul, "petra")
    assert AuditEvent.objects.filter(action="employee.offboarding_requested", actor=petra).count() == 1


def test_only_a_superuser_offboards_a_superuser(pki, pki_admins, make_user):
    petra, _ = pki_admins
    root, other_root = make_user("root", superuser=True), make_user("root2", superuser=True)
    with pytest.raises(NotAllowed, match="Only a superuser"):
        offboarding_request_create(user=root, actor=petra, reason="x")
    offboarding_request_create(user=root, actor=other_root, reason="rotating the break-glass account")
    with pytest.raises(NotAllowed, match="Only a superuser"):
        employee_offboard(user=root, actor=petra)
    third_root = make_user("root3", superuser=True)
    employee_offboard(user=root, actor=third_root)
    assert not _fresh(root).is_active


def test_removing_the_last_approvers_recovery_needs_names_the_consequence(
    pki, pki_admins, approver, approver2, third_approver, settings
):
    petra, paul = pki_admins
    assert settings.PORTAL_RECOVERY_APPROVALS == 2
    offboarding_request_create(user=third_approver, actor=petra, reason="left")
    employee_offboard(user=third_approver, actor=paul)  # two approvers remain: no warning
    offboarding_request_create(user=approver2, actor=petra, reason="left")
    with pytest.raises(InvalidState, match="1 approver\\(s\\) remain, but every key recovery needs 2"):
        employee_offboard(user=approver2, actor=paul)
    assert _fresh(approver2).is_active
    employee_offboard(user=approver2, actor=paul, acknowledge_consequences=True)
    assert not _fresh(approver2).is_active
    event = AuditEvent.objects.filter(action="employee.offboarded").latest("id")
    assert "no escrowed key could be recovered" in event.details["accepted_consequence"]


def test_an_employee_is_still_offboarded_by_one_approver(pki, alice, approver):
    employee_offboard(user=alice, actor=approver)
    assert not _fresh(alice).is_active
    assert not OffboardingRequest.objects.exists()


def test_a_request_for_an_employee_without_a_trusted_role_is_refused(pki, alice, pki_admins):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="holds no trusted role"):
        offboarding_request_create(user=alice, actor=pki_admins[0], reason="left")


def test_the_admin_takes_a_request_and_a_second_administrator(pki, pki_admins, auditor, client):
    petra, paul = pki_admins
    employee = auditor.employee
    changelist = "/admin/enrollment/employee/"
    assert client.login(username="petra", password=PASSWORD)
    client.post(changelist, {"action": "request_offboarding_selected", "_selected_action": [employee.pk],
                             "confirm": "yes", "reason": "left"})
    assert OffboardingRequest.objects.filter(user=auditor, requested_by=petra).exists()
    client.post(changelist, {"action": "offboard_selected", "_selected_action": [employee.pk], "confirm": "yes"})
    assert _fresh(auditor).is_active  # the requester cannot be the second person
    client.logout()
    assert client.login(username="paul", password=PASSWORD)
    client.post(changelist, {"action": "offboard_selected", "_selected_action": [employee.pk], "confirm": "yes"})
    assert not _fresh(auditor).is_active
