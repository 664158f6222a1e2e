"""Who may request, approve, reject and complete a key recovery (services)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from test_recovery_support import AGENT_PASSPHRASE, agent_p12, agent_user, approved_recovery  # noqa: F401

from core.exceptions import InvalidState, NotAllowed, NotFound, SeparationOfDuties
from enrollment.services.requests import certificate_request_approve, certificate_request_create
from escrow.models import RecoveryDecision
from escrow.services.recovery import (
    recovery_request_approve,
    recovery_request_complete,
    recovery_request_create,
    recovery_request_reject,
)


@pytest.fixture
def boss(make_user):
    """A PKI administrator who is an approver too."""
    from enrollment.roles import APPROVERS, PKI_ADMINISTRATORS

    return make_user("boss", groups=[APPROVERS, PKI_ADMINISTRATORS], given_name="Bo", surname="Boss")


@pytest.fixture
def pending(issued, alice):
    return recovery_request_create(requested_by=alice, reason="Disk died", serial=issued.serial)


def test_the_requester_cannot_approve(pki, issued, boss, approver):
    request = recovery_request_create(requested_by=boss, reason="Employee lost key", serial=issued.serial)
    assert request.purpose == "admin" and request.recipient.username == "alice"
    with pytest.raises(SeparationOfDuties, match="you made it"):
        recovery_request_approve(request_id=request.pk, approver=boss)
    with pytest.raises(SeparationOfDuties):
        recovery_request_reject(request_id=request.pk, approver=boss, comment="no")
    assert recovery_request_approve(request_id=request.pk, approver=approver).status == "pending"


def test_the_owner_cannot_approve(pki, pki_admin, approver, approver2, alice):

    created = certificate_request_create(employee=approver.employee, submitted_by=approver)
    certificate = certificate_request_approve(request_id=created.pk, approver=approver2).certificate
    request = recovery_request_create(
        requested_by=pki_admin, reason="Leaving", serial=certificate.serial, recipient_username="alice"
    )
    with pytest.raises(SeparationOfDuties, match="the keys are yours"):
        recovery_request_approve(request_id=request.pk, approver=approver)


def test_the_recipient_cannot_approve(pki, issued, pki_admin, approver):
    request = recovery_request_create(
        requested_by=pki_admin, reason="Successor reads the mailbox", serial=issued.serial, recipient_username="approver"
    )
    with pytest.raises(SeparationOfDuties, match="would go to you"):
        recovery_request_approve(request_id=request.pk, approver=approver)


def test_the_same_approver_twice_is_refused(pki, pending, approver):
    recovery_request_approve(request_id=pending.pk, approver=approver, comment="fine")
    with pytest.raises(SeparationOfDuties, match="different approver"):
        recovery_request_approve(request_id=pending.pk, approver=approver)
    with pytest.raises(SeparationOfDuties):
        recovery_request_reject(request_id=pending.pk, approver=approver, comment="changed my mind")
    assert RecoveryDecision.objects.filter(request=pending).count() == 1
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_too_few_approvals_cannot_be_completed(pki, pending, approver, agent_user, agent_p12):
    assert recovery_request_approve(request_id=pending.pk, approver=approver).status == "pending"
    with pytest.raises(InvalidState, match="is pending, not approved"):
        recovery_request_complete(
            request_id=pending.pk, agent=agent_user, agent_pkcs12=agent_p12, passphrase=AGENT_PASSPHRASE
        )


def test_required_approvals_come_from_the_setting_when_requested(pki, issued, alice, approver, approver2, make_user, settings):
    from enrollment.roles import APPROVERS

    settings.PORTAL_RECOVERY_APPROVALS = 3
    request = recovery_request_create(requested_by=alice, reason="x", serial=issued.serial)
    settings.PORTAL_RECOVERY_APPROVALS = 2  # a later change does not lower what the request needs
    third = make_user("approver3", groups=[APPROVERS])
    assert recovery_request_approve(request_id=request.pk, approver=approver).status == "pending"
    assert recovery_request_approve(request_id=request.pk, approver=approver2).status == "pending"
    assert recovery_request_approve(request_id=request.pk, approver=third).status == "approved"


def test_one_rejection_rejects(pki, pending, approver, approver2):
    recovery_request_approve(request_id=pending.pk, approver=approver)
    with pytest.raises(ValidationError) as info:
        recovery_request_reject(request_id=pending.pk, approver=approver2, comment="  ")
    assert "comment" in info.value.message_dict
    request = recovery_request_reject(request_id=pending.pk, approver=approver2, comment="Not plausible")
    assert request.status == "rejected" and request.decided_at is not None
    with pytest.raises(InvalidState, match="is rejected"):
        recovery_request_approve(request_id=pending.pk, approver=approver2)


def test_only_approvers_decide(pki, pending, bob, agent_user, auditor, pki_admin):
    for user in (bob, agent_user, auditor, pki_admin):
        with pytest.raises(NotAllowed):
            recovery_request_approve(request_id=pending.pk, approver=user)


def test_who_may_request(pki, issued, alice, bob, auditor, pki_admin, approver):
    # Another employee's key does not exist as far as bob (or an approver) can tell.
    for user in (bob, approver):
        with pytest.raises(NotFound):
            recovery_request_create(requested_by=user, reason="curious", serial=issued.serial)
        with pytest.raises(NotFound):
            recovery_request_create(requested_by=user, reason="curious", employee_username="alice")
    with pytest.raises(NotFound):
        recovery_request_create(requested_by=bob, reason="x", serial="abcdef")
    # The owner asks for herself only.
    with pytest.raises(ValidationError) as info:
        recovery_request_create(requested_by=alice, reason="x", serial=issued.serial, recipient_username="bob")
    assert "recipient" in info.value.message_dict
    with pytest.raises(NotAllowed):
        recovery_request_create(requested_by=alice, reason="x", serial=issued.serial, purpose="legal-hold")
    # An auditor asks for legal hold; the keys go to the auditor by default.
    hold = recovery_request_create(requested_by=auditor, reason="Case 17", employee_username="alice")
    assert (hold.purpose, hold.recipient.username, hold.certificate) == ("legal-hold", "auditor", None)
    # A PKI administrator for the owner, by default.
    admin = recovery_request_create(requested_by=pki_admin, reason="Helpdesk 12", serial=issued.serial)
    assert (admin.purpose, admin.recipient.username) == ("admin", "alice")
    # The same keys for the same recipient cannot be asked for twice while open.
    with pytest.raises(ValidationError, match="is open already"):
        recovery_request_create(requested_by=alice, reason="again", serial=issued.serial)


def test_request_input_errors(pki, issued, alice, pki_admin):
    with pytest.raises(ValidationError) as info:
        recovery_request_create(requested_by=alice, reason=" ", serial="")
    assert set(info.value.message_dict) == {"reason", "certificate"}
    with pytest.raises(ValidationError) as info:
        recovery_request_create(requested_by=pki_admin, reason="x", serial=issued.serial, recipient_username="nobody")
    assert "recipient" in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        recovery_request_create(requested_by=pki_admin, reason="x", employee_username="pkiadmin")
    assert "has no escrowed keys" in info.value.message_dict["employee"][0]


def test_completion_rules(pki, approved_recovery, alice, approver, agent_user, agent_p12, make_user):
    from enrollment.pki.keys import generate_private_key
    from enrollment.pki.pkcs12 import pkcs12_bundle
    from enrollment.roles import KEY_RECOVERY_AGENTS

    # Not an agent.
    with pytest.raises(NotAllowed):
        recovery_request_complete(
            request_id=approved_recovery.pk, agent=approver, agent_pkcs12=agent_p12, passphrase=AGENT_PASSPHRASE
        )
    # A PKCS#12 whose certificate is not a registered agent.
    stranger_key = generate_private_key("rsa-3072")
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "stranger")])
    now = datetime.now(timezone.utc)
    stranger = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(stranger_key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
        .sign(stranger_key, hashes.SHA256())
    )
    stranger_p12 = pkcs12_bundle(key=stranger_key, certificate=stranger, chain=[], friendly_name="x", passphrase=AGENT_PASSPHRASE)
    with pytest.raises(ValidationError, match="not a registered key recovery agent"):
        recovery_request_complete(
            request_id=approved_recovery.pk, agent=agent_user, agent_pkcs12=stranger_p12, passphrase=AGENT_PASSPHRASE
        )
    # The agent certificate registered to another account.
    other = make_user("agent2", groups=[KEY_RECOVERY_AGENTS])
    pki["agent"].user = other
    pki["agent"].save()
    with pytest.raises(NotAllowed, match="belongs to another account"):
        recovery_request_complete(
            request_id=approved_recovery.pk, agent=agent_user, agent_pkcs12=agent_p12, passphrase=AGENT_PASSPHRASE
        )
    done = recovery_request_complete(
        request_id=approved_recovery.pk, agent=other, agent_pkcs12=agent_p12, passphrase=AGENT_PASSPHRASE
    )
    assert done.status == "completed" and done.pickups.count() == 1


def test_an_agent_cannot_complete_a_recovery_of_their_own_key(pki, agent_user, approver, approver2, agent_p12):

    created = certificate_request_create(employee=agent_user.employee, submitted_by=agent_user)
    certificate = certificate_request_approve(request_id=created.pk, approver=approver).certificate
    request = recovery_request_create(requested_by=agent_user, reason="mine", serial=certificate.serial)
    recovery_request_approve(request_id=request.pk, approver=approver)
    recovery_request_approve(request_id=request.pk, approver=approver2)
    with pytest.raises(SeparationOfDuties):
        recovery_request_complete(
            request_id=request.pk, agent=agent_user, agent_pkcs12=agent_p12, passphrase=AGENT_PASSPHRASE
        )
