"""A directory log-in against the real slapd never changes a certified identity on its own: changed mail or
names that valid certificates bind become an identity change request; unbound changes are one audited step."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from slapd_server import DIRECTORY_PASSWORDS, person_dn

from audit.models import AuditEvent
from enrollment.models import Certificate, Employee, IdentityChangeRequest
from enrollment.services.identity_changes import identity_change_request_confirm

User = get_user_model()


def login(client, username: str):
    response = client.post("/login/", {"username": username, "password": DIRECTORY_PASSWORDS[username]})
    client.logout()
    return response


def events(action: str, employee) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, object_id=str(employee.pk)).order_by("id"))


def test_first_login_and_unbound_changes_are_written_and_audited_with_the_directory_as_source(
    client, ldap_login, directory
):
    assert login(client, "bob").status_code == 302
    employee = Employee.objects.get(user__username="bob")
    (created,) = events("employee.created", employee)
    assert created.actor_name == "" and created.details["source"] == "directory log-in"
    assert created.details["entry_dn"] == person_dn("bob") and created.details["mail"] == "bob@example.org"

    directory.replace_values(person_dn("bob"), "mail", ["robert.baker@example.org"])
    assert login(client, "bob").status_code == 302  # no certificate binds the mailbox: applied at once

    assert Employee.objects.get(pk=employee.pk).mail == "robert.baker@example.org"
    (changed,) = events("employee.changed", employee)
    assert changed.actor_name == "" and changed.details["source"] == "directory log-in"
    assert changed.details["changes"] == {"mail": {"old": "bob@example.org", "new": "robert.baker@example.org"}}
    assert not IdentityChangeRequest.objects.exists()


def test_a_changed_mailbox_of_a_certified_employee_opens_a_request_instead_of_changing_it(
    client, ldap_login, directory, issue_certificate, approver2
):
    assert login(client, "bob").status_code == 302
    bob = User.objects.get(username="bob")
    certificate = issue_certificate(bob)
    directory.replace_values(person_dn("bob"), "mail", ["robert.baker@example.org"])
    directory.replace_values(person_dn("bob"), "sn", ["Baker-Smith"])

    response = client.post("/login/", {"username": "bob", "password": DIRECTORY_PASSWORDS["bob"]})

    assert response.status_code == 302  # the log-in still succeeds
    client.logout()
    employee = Employee.objects.get(user=bob)
    assert (employee.mail, employee.surname) == ("bob@example.org", "Baker")  # not applied
    request = IdentityChangeRequest.objects.get(employee=employee)
    assert request.state == "pending" and request.requested_by is None and request.source == "directory log-in"
    assert request.changes == {
        "mail": {"old": "bob@example.org", "new": "robert.baker@example.org"},
        "surname": {"old": "Baker", "new": "Baker-Smith"},
    }
    (asked,) = events("employee.identity_change_requested", employee)
    assert asked.actor_name == "" and asked.details["source"] == "directory log-in"
    assert asked.details["revoked_on_confirmation"] == [certificate.serial]
    assert Certificate.objects.get(pk=certificate.pk).status == "valid"
    # The next log-in reporting the same finds the open request: nothing more is asked for.
    assert login(client, "bob").status_code == 302
    assert IdentityChangeRequest.objects.filter(employee=employee).count() == 1

    identity_change_request_confirm(request_id=request.pk, actor=approver2)

    employee.refresh_from_db()
    assert (employee.mail, employee.surname) == ("robert.baker@example.org", "Baker-Smith")
    revoked = Certificate.objects.get(pk=certificate.pk)
    assert (revoked.status, revoked.revocation_reason) == ("revoked", "affiliation_changed")
    assert events("employee.identity_change_confirmed", employee)[0].details["requested_by"] == "the directory log-in"
