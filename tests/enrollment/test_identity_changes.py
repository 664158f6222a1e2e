"""Identity changes that valid certificates bind need two people, and revoke the certificates naming the old
identity (affiliationChanged); changes nothing binds stay one audited step (issue 11)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from portal_testing import PASSWORD

from audit.models import AuditEvent
from core.exceptions import InvalidState, NotAllowed, SeparationOfDuties
from enrollment.models import Certificate, Employee, IdentityChangeRequest
from enrollment.roles import APPROVERS, PKI_ADMINISTRATORS
from enrollment.services.employees import employee_update
from enrollment.services.identity_changes import (
    employee_update_or_request,
    identity_change_request_confirm,
    identity_change_request_create,
    identity_change_request_reject,
    identity_change_request_withdraw,
    identity_change_requests_expire,
)

CHANGELIST = "/admin/enrollment/identitychangerequest/"


@pytest.fixture
def pki_admin(make_user):
    return make_user("pkiadmin", groups=[PKI_ADMINISTRATORS], given_name="Pat", surname="Administrator")


@pytest.fixture
def pki_admin2(make_user):
    return make_user("pkiadmin2", groups=[PKI_ADMINISTRATORS], given_name="Paula", surname="Administrator")


def events(action: str, employee) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, object_id=str(employee.pk)).order_by("id"))


def ask(employee, actor, **changes) -> IdentityChangeRequest:
    return identity_change_request_create(employee=employee, actor=actor, reason="married; new mailbox", **changes)


def test_confirmed_by_an_approver_changes_the_fields_revokes_the_old_certificate_and_lists_it_in_the_crl(
    pki, alice, issued, pki_admin, approver2
):
    from enrollment.revocation.services import crl_current

    request = ask(alice.employee, pki_admin, mail="alice.smith@example.org", surname="Smith")
    assert Employee.objects.get(pk=alice.employee.pk).mail == "alice@example.org"  # nothing yet
    (asked,) = events("employee.identity_change_requested", alice.employee)
    assert asked.actor_name == "pkiadmin" and asked.details["revoked_on_confirmation"] == [issued.serial]

    confirmed = identity_change_request_confirm(request_id=request.pk, actor=approver2)

    employee = Employee.objects.get(pk=alice.employee.pk)
    assert (employee.mail, employee.surname, employee.given_name) == ("alice.smith@example.org", "Smith", "Alice")
    assert confirmed.state == "confirmed" and confirmed.decided_by == approver2
    assert confirmed.revoked_serials == [issued.serial]
    issued.refresh_from_db()
    assert (issued.status, issued.revocation_reason, issued.revoked_by) == ("revoked", "affiliation_changed", approver2)
    crl = x509.load_der_x509_crl(crl_current(ca=pki["issuing"]))
    entry = crl.get_revoked_certificate_by_serial_number(int(issued.serial, 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.affiliation_changed
    (changed,) = events("employee.changed", employee)
    assert changed.actor_name == "approver2" and changed.details["identity_change_request"] == request.pk
    assert changed.details["changes"] == {
        "mail": {"old": "alice@example.org", "new": "alice.smith@example.org"},
        "surname": {"old": "Archer", "new": "Smith"},
    }
    (done,) = events("employee.identity_change_confirmed", employee)
    assert done.details["requested_by"] == "pkiadmin" and done.details["revoked"] == [issued.serial]
    assert AuditEvent.objects.filter(action="certificate.revoked", object_id=str(issued.pk)).exists()


def test_another_pki_administrator_confirms_too(pki, alice, issued, pki_admin, pki_admin2):
    request = ask(alice.employee, pki_admin, mail="alice.smith@example.org")

    identity_change_request_confirm(request_id=request.pk, actor=pki_admin2)

    assert Employee.objects.get(pk=alice.employee.pk).mail == "alice.smith@example.org"
    assert Certificate.objects.get(pk=issued.pk).status == "revoked"


def test_the_requester_cannot_confirm_nor_reject_their_own_request(pki, alice, issued, pki_admin):
    request = ask(alice.employee, pki_admin, mail="alice.smith@example.org")

    with pytest.raises(SeparationOfDuties, match="another PKI administrator or an approver"):
        identity_change_request_confirm(request_id=request.pk, actor=pki_admin)
    with pytest.raises(SeparationOfDuties):
        identity_change_request_reject(request_id=request.pk, actor=pki_admin, comment="never mind")

    assert Employee.objects.get(pk=alice.employee.pk).mail == "alice@example.org"
    assert Certificate.objects.get(pk=issued.pk).status == "valid"
    assert IdentityChangeRequest.objects.get(pk=request.pk).state == "pending"


def test_the_employee_cannot_confirm_a_change_of_their_own_identity(pki, alice, issued, pki_admin):
    alice.groups.add(Group.objects.get(name=APPROVERS))  # alice may decide others' changes, not her own
    request = ask(alice.employee, pki_admin, mail="alice.smith@example.org")

    with pytest.raises(SeparationOfDuties, match="your own identity"):
        identity_change_request_confirm(request_id=request.pk, actor=alice)

    assert Employee.objects.get(pk=alice.employee.pk).mail == "alice@example.org"
    # Nor asks for one herself (were she a PKI administrator).
    alice.groups.add(Group.objects.get(name=PKI_ADMINISTRATORS))
    identity_change_request_withdraw(request_id=request.pk, actor=pki_admin)
    with pytest.raises(SeparationOfDuties, match="your own identity"):
        ask(alice.employee, alice, mail="alice.smith@example.org")


def test_only_pki_administrators_ask_and_only_they_or_approvers_decide(pki, alice, bob, issued, pki_admin, approver):
    with pytest.raises(NotAllowed):
        ask(alice.employee, approver, mail="alice.smith@example.org")
    request = ask(alice.employee, pki_admin, mail="alice.smith@example.org")
    with pytest.raises(NotAllowed, match="Only PKI administrators and approvers"):
        identity_change_request_confirm(request_id=request.pk, actor=bob)
    assert Employee.objects.get(pk=alice.employee.pk).mail == "alice@example.org"


def test_rejection_changes_nothing(pki, alice, issued, pki_admin, approver2):
    request = ask(alice.employee, pki_admin, mail="alice.smith@example.org")

    with pytest.raises(ValidationError):
        identity_change_request_reject(request_id=request.pk, actor=approver2, comment="")
    rejected = identity_change_request_reject(request_id=request.pk, actor=approver2, comment="not her request")

    assert rejected.state == "rejected"
    assert Employee.objects.get(pk=alice.employee.pk).mail == "alice@example.org"
    assert Certificate.objects.get(pk=issued.pk).status == "valid"
    assert events("employee.changed", alice.employee) == []
    (event,) = events("employee.identity_change_rejected", alice.employee)
    assert event.actor_name == "approver2" and event.details["comment"] == "not her request"
    with pytest.raises(InvalidState, match="rejected already"):
        identity_change_request_confirm(request_id=request.pk, actor=approver2)


def test_one_open_request_per_employee_and_the_requester_withdraws(pki, alice, issued, pki_admin, pki_admin2):
    request = ask(alice.employee, pki_admin, mail="alice.smith@example.org")

    with pytest.raises(InvalidState, match="is open already"):
        ask(alice.employee, pki_admin2, surname="Smith")
    with transaction.atomic(), pytest.raises(IntegrityError):  # the database says so too
        IdentityChangeRequest.objects.create(
            employee=alice.employee, changes={}, reason="x", expires_at=timezone.now() + timedelta(days=1)
        )
    with pytest.raises(NotAllowed, match="Only whoever asked"):
        identity_change_request_withdraw(request_id=request.pk, actor=pki_admin2)

    identity_change_request_withdraw(request_id=request.pk, actor=pki_admin)

    assert IdentityChangeRequest.objects.get(pk=request.pk).state == "withdrawn"
    assert events("employee.identity_change_withdrawn", alice.employee)
    ask(alice.employee, pki_admin2, surname="Smith")  # the next one may be asked for now


def test_a_pending_request_expires(pki, alice, issued, pki_admin, approver2):
    request = ask(alice.employee, pki_admin, mail="alice.smith@example.org")
    IdentityChangeRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(InvalidState, match="expired"):
        identity_change_request_confirm(request_id=request.pk, actor=approver2)
    assert identity_change_requests_expire() == 1

    assert IdentityChangeRequest.objects.get(pk=request.pk).state == "expired"
    assert Employee.objects.get(pk=alice.employee.pk).mail == "alice@example.org"
    assert events("employee.identity_change_expired", alice.employee)


def test_the_domain_rule_is_checked_when_asking_and_again_on_confirmation(pki, alice, issued, pki_admin, approver2, settings):
    settings.PORTAL_MAIL_DOMAINS = ["example.org"]
    with pytest.raises(ValidationError) as raised:
        ask(alice.employee, pki_admin, mail="alice@elsewhere.test")
    assert raised.value.message_dict["mail"] == ["This CA does not certify addresses at elsewhere.test."]
    request = ask(alice.employee, pki_admin, mail="alice.smith@example.org")
    settings.PORTAL_MAIL_DOMAINS = ["example.com"]

    with pytest.raises(ValidationError):
        identity_change_request_confirm(request_id=request.pk, actor=approver2)

    assert Employee.objects.get(pk=alice.employee.pk).mail == "alice@example.org"
    assert Certificate.objects.get(pk=issued.pk).status == "valid"


def test_unbound_changes_stay_one_audited_step(pki, alice, pki_admin):
    # No valid certificate: the mailbox and names change at once, with old → new in the log.
    employee = employee_update(employee=alice.employee, actor=pki_admin, mail="alice.smith@example.org", surname="Smith")

    assert (employee.mail, employee.surname) == ("alice.smith@example.org", "Smith")
    (event,) = events("employee.changed", employee)
    assert event.details["changes"]["surname"] == {"old": "Archer", "new": "Smith"}
    assert not IdentityChangeRequest.objects.exists()
    with pytest.raises(InvalidState, match="change the employee directly"):
        ask(employee, pki_admin, mail="alice.s@example.org")


def test_the_form_path_applies_the_unbound_part_and_requests_the_bound_one(pki, alice, issued, pki_admin):
    outcome = employee_update_or_request(
        employee=alice.employee, actor=pki_admin, reason="new mailbox", mail="alice.smith@example.org", department="IT"
    )

    assert outcome.applied == ["department"] and outcome.request is not None
    assert outcome.request.changes == {"mail": {"old": "alice@example.org", "new": "alice.smith@example.org"}}
    employee = Employee.objects.get(pk=alice.employee.pk)
    assert (employee.mail, employee.department) == ("alice@example.org", "IT")


# --- Admin ---------------------------------------------------------------------------------


def login(client, user):
    assert client.login(username=user.get_username(), password=PASSWORD)
    return client


def test_the_employee_form_turns_a_bound_mailbox_change_into_a_request(client, pki, alice, issued, pki_admin):
    employee = alice.employee
    data = {
        "mail": "alice.smith@example.org", "given_name": "Alice", "surname": "Archer", "department": "",
        "directory_dn": "", "reason": "married",
    }

    response = login(client, pki_admin).post(f"/admin/enrollment/employee/{employee.pk}/change/", data, follow=True)

    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert any("waits for another PKI administrator or an approver" in m and issued.serial in m for m in messages), messages
    assert Employee.objects.get(pk=employee.pk).mail == "alice@example.org"
    request = IdentityChangeRequest.objects.get(employee=employee)
    assert request.state == "pending" and request.requested_by == pki_admin


def test_the_admin_shows_the_second_person_rule_and_an_approver_confirms(client, pki, alice, issued, pki_admin, approver2):
    add = login(client, pki_admin).post(
        f"{CHANGELIST}add/",
        {"employee_ref": "alice", "mail": "alice.smith@example.org", "reason": "married"},
        follow=True,
    )
    assert add.status_code == 200, add.content.decode()[:2000]
    request = IdentityChangeRequest.objects.get(employee=alice.employee)
    action = {"action": "confirm_selected", "_selected_action": [request.pk]}
    # The requester sees before trying that they cannot decide, and confirming changes nothing.
    page = client.post(CHANGELIST, action)
    assert "You cannot decide this one: You asked for identity change" in page.content.decode()
    refused = client.post(CHANGELIST, {**action, "confirm": "yes"}, follow=True)
    assert any("not confirmed" in str(m) for m in refused.context["messages"])
    assert IdentityChangeRequest.objects.get(pk=request.pk).state == "pending"
    client.logout()

    login(client, approver2)
    page = client.post(CHANGELIST, action)
    assert f"Confirming revokes: {issued.serial}" in page.content.decode()
    done = client.post(CHANGELIST, {**action, "confirm": "yes"}, follow=True)

    assert any(f"revoked {issued.serial}" in str(m) for m in done.context["messages"]), list(done.context["messages"])
    assert Employee.objects.get(pk=alice.employee.pk).mail == "alice.smith@example.org"
    assert Certificate.objects.get(pk=issued.pk).revocation_reason == "affiliation_changed"


def test_an_approver_rejects_in_the_admin(client, pki, alice, issued, pki_admin, approver2):
    request = ask(alice.employee, pki_admin, mail="alice.smith@example.org")
    action = {"action": "reject_selected", "_selected_action": [request.pk], "confirm": "yes", "comment": "no"}

    login(client, approver2).post(CHANGELIST, action)

    assert IdentityChangeRequest.objects.get(pk=request.pk).state == "rejected"
    assert Certificate.objects.get(pk=issued.pk).status == "valid"


def test_the_api_patch_follows_the_same_rule(pki, alice, issued, pki_admin):
    import base64

    from rest_framework.test import APIClient

    client = APIClient()
    credentials = base64.b64encode(f"pkiadmin:{PASSWORD}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}")
    url = f"/api/v1/employees/{alice.employee.pk}/"

    refused = client.patch(url, {"mail": "alice.smith@example.org"}, format="json")

    assert refused.status_code == 400, refused.content
    assert issued.serial in refused.content.decode() and "second person" in refused.content.decode()
    assert Employee.objects.get(pk=alice.employee.pk).mail == "alice@example.org"
    assert client.patch(url, {"department": "IT"}, format="json").status_code == 200
