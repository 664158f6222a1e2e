"""Recovery rules that hold against one trusted account: legal hold goes to the auditor only,
nobody who decided a recovery completes it, only Approvers approve, approvals expire, and
open requests can be withdrawn by the requester, the owner or an approver."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from test_recovery_support import (  # noqa: F401 - fixtures
    AGENT_PASSPHRASE,
    agent_p12,
    agent_user,
    approved_recovery,
    login,
    messages_of,
)

from audit.models import AuditEvent
from core.exceptions import InvalidState, NotAllowed, NotFound, SeparationOfDuties
from escrow.models import RecoveryRequest
from escrow.services.recovery import (
    recovery_request_approve,
    recovery_request_complete,
    recovery_request_create,
)
from escrow.services.recovery_close import recoveries_expire, recovery_request_withdraw


def _complete(request, agent, agent_p12):
    return recovery_request_complete(
        request_id=request.pk, agent=agent, agent_pkcs12=agent_p12, passphrase=AGENT_PASSPHRASE
    )


def test_a_legal_hold_delivers_to_the_requesting_auditor_only(pki, issued, auditor, bob):
    with pytest.raises(ValidationError) as refused:
        recovery_request_create(
            requested_by=auditor, reason="Case 17", employee_username="alice", recipient_username="bob"
        )
    assert "recipient" in refused.value.message_dict
    assert not RecoveryRequest.objects.exists()
    hold = recovery_request_create(
        requested_by=auditor, reason="Case 17", employee_username="alice", recipient_username="auditor"
    )
    assert (hold.purpose, hold.recipient, hold.requested_by) == ("legal-hold", auditor, auditor)


def test_an_approver_who_is_also_an_agent_cannot_complete_what_they_approved(
    pki, issued, alice, approver2, make_user, agent_p12
):
    from enrollment.roles import APPROVERS, KEY_RECOVERY_AGENTS

    both = make_user("both", groups=[APPROVERS, KEY_RECOVERY_AGENTS], given_name="Bea", surname="Both")
    request = recovery_request_create(requested_by=alice, reason="lost", serial=issued.serial)
    recovery_request_approve(request_id=request.pk, approver=both)
    recovery_request_approve(request_id=request.pk, approver=approver2)
    with pytest.raises(SeparationOfDuties, match="you decided it"):
        _complete(request, both, agent_p12)
    assert RecoveryRequest.objects.get(pk=request.pk).status == "approved"


def test_a_superuser_outside_the_approvers_group_does_not_count_as_an_approver(pki, issued, alice, make_user):
    from enrollment.roles import APPROVERS

    root = make_user("root", superuser=True)
    request = recovery_request_create(requested_by=alice, reason="lost", serial=issued.serial)
    with pytest.raises(NotAllowed, match="only members of Approvers"):
        recovery_request_approve(request_id=request.pk, approver=root)
    root.groups.add(root.groups.model.objects.get(name=APPROVERS))
    root = type(root).objects.get(pk=root.pk)  # a fresh permission cache
    assert recovery_request_approve(request_id=request.pk, approver=root).decisions.count() == 1


def test_an_approval_expires_unless_an_agent_completes_it_in_time(
    pki, approved_recovery, alice, agent_user, agent_p12, settings
):
    approved = RecoveryRequest.objects.get(pk=approved_recovery.pk)
    assert approved.approval_expires_at == approved.decided_at + timedelta(days=settings.PORTAL_RECOVERY_APPROVAL_DAYS)
    RecoveryRequest.objects.filter(pk=approved.pk).update(approval_expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(InvalidState, match="expired"):
        _complete(approved, agent_user, agent_p12)
    assert recoveries_expire() == 1
    assert RecoveryRequest.objects.get(pk=approved.pk).status == "expired"
    assert AuditEvent.objects.filter(action="recovery.expired", object_id=str(approved.pk)).count() == 1
    # The expired approval does not block a new request for the same keys.
    again = recovery_request_create(requested_by=alice, reason="still lost", serial=approved.certificate.serial)
    assert RecoveryRequest.objects.get(pk=again.pk).status == "pending"


@pytest.mark.parametrize("who", ["alice", "approver"])
def test_the_requester_the_owner_or_an_approver_withdraws(pki, approved_recovery, request, who, agent_user, agent_p12):
    actor = request.getfixturevalue(who)
    withdrawn = recovery_request_withdraw(request_id=approved_recovery.pk, actor=actor, reason="found the laptop")
    assert (withdrawn.status, withdrawn.withdrawn_by) == ("withdrawn", actor)
    event = AuditEvent.objects.get(action="recovery.withdrawn")
    assert (event.actor, event.details) == (actor, {"reason": "found the laptop", "was": "approved"})
    with pytest.raises(InvalidState):
        _complete(withdrawn, agent_user, agent_p12)


def test_the_owner_withdraws_a_request_someone_else_made(pki, issued, alice, pki_admin):
    request = recovery_request_create(requested_by=pki_admin, reason="helpdesk", serial=issued.serial)
    assert recovery_request_withdraw(request_id=request.pk, actor=alice, reason="not me").status == "withdrawn"


def test_nobody_else_withdraws(pki, approved_recovery, bob, auditor, agent_user):
    with pytest.raises(NotFound):
        recovery_request_withdraw(request_id=approved_recovery.pk, actor=bob, reason="x")
    for user in (auditor, agent_user):  # they may read it, not withdraw it
        with pytest.raises(NotAllowed):
            recovery_request_withdraw(request_id=approved_recovery.pk, actor=user, reason="x")
    with pytest.raises(ValidationError):
        recovery_request_withdraw(request_id=approved_recovery.pk, actor=approved_recovery.requested_by, reason=" ")
    assert RecoveryRequest.objects.get(pk=approved_recovery.pk).status == "approved"


def test_the_approval_page_names_whose_keys_go_to_whom(pki, issued, auditor, approver, client):
    hold = recovery_request_create(requested_by=auditor, reason="Case 17", employee_username="alice")
    login(client, "approver")
    page = client.post(
        "/admin/escrow/recoveryrequest/", {"action": "approve_selected", "_selected_action": [hold.pk]}
    )
    assert page.status_code == 200
    assert '<strong class="decision-detail">keys of alice go to auditor (legal hold; requested by auditor)</strong>' in (
        page.content.decode()
    )


def test_an_employee_withdraws_their_request_on_the_self_service_page(pki, issued, alice, client):
    request = recovery_request_create(requested_by=alice, reason="lost", serial=issued.serial)
    login(client, "alice")
    index = client.get("/recovery/").content.decode()
    assert f'action="/recovery/{request.pk}/withdraw/"' in index
    response = client.post(f"/recovery/{request.pk}/withdraw/", {"reason": "found it"}, follow=True)
    assert RecoveryRequest.objects.get(pk=request.pk).status == "withdrawn"
    assert any("withdrawn" in message for message in messages_of(response))
