"""PKI administrators change employees in the admin only through the services: audited, the
mail-domain rule, certificates bind the identity, and a record is never re-linked to another account."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from portal_testing import PASSWORD

from audit.models import AuditEvent
from enrollment.models import Certificate, Employee
from enrollment.services.employees import employee_create, employee_update

CHANGELIST = "/admin/enrollment/employee/"


@pytest.fixture
def pki_admin(make_user):
    from enrollment.roles import PKI_ADMINISTRATORS

    return make_user("pkiadmin", groups=[PKI_ADMINISTRATORS], given_name="Pat", surname="Administrator")


@pytest.fixture
def admin_client(client, pki_admin):
    assert not pki_admin.is_superuser
    assert client.login(username="pkiadmin", password=PASSWORD)
    return client


def change_url(employee) -> str:
    return f"{CHANGELIST}{employee.pk}/change/"


def form_data(employee, **changes) -> dict:
    data = {
        "mail": employee.mail,
        "given_name": employee.given_name,
        "surname": employee.surname,
        "department": employee.department,
        "directory_dn": employee.directory_dn,
    }
    return {**data, **changes}


def employee_events(action: str, employee) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, object_id=str(employee.pk)).order_by("id"))


def test_a_mailbox_change_in_the_admin_is_audited_with_old_and_new(admin_client, alice):
    employee = alice.employee

    response = admin_client.post(change_url(employee), form_data(employee, mail="Alice.Archer@Example.org"))

    assert response.status_code == 302, response.content.decode()[:2000]
    employee.refresh_from_db()
    assert employee.mail == "alice.archer@example.org" and employee.user_id == alice.pk
    (event,) = employee_events("employee.changed", employee)
    assert event.actor_name == "pkiadmin"
    assert event.details["fields"] == ["mail"]
    assert event.details["changes"] == {"mail": {"old": "alice@example.org", "new": "alice.archer@example.org"}}


def test_saving_unchanged_records_no_event(admin_client, alice):
    response = admin_client.post(change_url(alice.employee), form_data(alice.employee))

    assert response.status_code == 302
    assert employee_events("employee.changed", alice.employee) == []


def test_a_mailbox_outside_the_ca_domains_is_refused_in_the_admin_and_by_the_service(
    admin_client, pki_admin, alice, settings
):
    settings.PORTAL_MAIL_DOMAINS = ["example.org"]
    employee = alice.employee

    response = admin_client.post(change_url(employee), form_data(employee, mail="alice@Elsewhere.test"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["mail"] == ["This CA does not certify addresses at elsewhere.test."]
    employee.refresh_from_db()
    assert employee.mail == "alice@example.org"
    with pytest.raises(ValidationError) as raised:
        employee_update(employee=employee, actor=pki_admin, mail="alice@elsewhere.test")
    assert raised.value.message_dict["mail"] == ["This CA does not certify addresses at elsewhere.test."]
    with pytest.raises(ValidationError) as raised:
        employee_create(actor=pki_admin, username="eve", mail="eve@elsewhere.test")
    assert raised.value.message_dict["mail"] == ["This CA does not certify addresses at elsewhere.test."]
    assert not get_user_model().objects.filter(username="eve").exists()
    assert employee_events("employee.changed", employee) == []
    # A department change of the same employee still works: the stored mailbox is allowed.
    assert admin_client.post(change_url(employee), form_data(employee, department="Sales")).status_code == 302


def test_a_mailbox_change_is_not_applied_by_one_person_while_a_valid_certificate_binds_it(
    admin_client, pki_admin, alice, issued
):
    employee = alice.employee

    # Without a reason the form refuses: the change would need a second person.
    response = admin_client.post(change_url(employee), form_data(employee, mail="alice.new@example.org"))

    assert response.status_code == 200
    (error,) = response.context["adminform"].form.errors["reason"]
    assert issued.serial in error and "second person" in error and "revoked" in error
    employee.refresh_from_db()
    assert employee.mail == "alice@example.org"
    issued.refresh_from_db()
    assert issued.status == Certificate.Status.VALID and issued.mailbox == "alice@example.org"
    assert employee_events("employee.changed", employee) == []
    # The service refuses it in one step too, and names the way (an identity change request).
    with pytest.raises(ValidationError) as raised:
        employee_update(employee=employee, actor=pki_admin, mail="alice.new@example.org")
    assert issued.serial in raised.value.message_dict["mail"][0]
    assert "Request identity change" in raised.value.message_dict["mail"][0]
    # The names a sponsor-validated certificate (as `issued` is) carries are bound too.
    with pytest.raises(ValidationError) as raised:
        employee_update(employee=employee, actor=pki_admin, surname="Archer-Smith")
    assert issued.serial in raised.value.message_dict["surname"][0]
    # Not what the certificate binds: the department may change.
    employee_update(employee=employee, actor=pki_admin, department="Sales")
    assert Employee.objects.get(pk=employee.pk).department == "Sales"


def test_the_account_of_an_employee_cannot_be_changed_in_the_admin(client, make_user, alice, bob):
    from enrollment.roles import PKI_ADMINISTRATORS

    # The attack: a PKI administrator without an employee record points someone's record at
    # their own account, to download that person's PKCS#12 and recover their keys.
    mallory = make_user("mallory", groups=[PKI_ADMINISTRATORS], employee=False)
    assert client.login(username="mallory", password=PASSWORD)
    employee = alice.employee

    response = client.post(
        change_url(employee), form_data(employee, user=str(mallory.pk), user_id=str(mallory.pk), department="IT")
    )

    assert response.status_code == 302
    employee.refresh_from_db()
    assert employee.user_id == alice.pk and employee.department == "IT"
    assert not Employee.objects.filter(user=mallory).exists()
    (event,) = employee_events("employee.changed", employee)
    assert event.details["fields"] == ["department"] and event.actor_name == "mallory"
    page = client.get(change_url(employee))
    assert "user" not in page.context["adminform"].form.fields
    assert "alice" in page.content.decode()  # shown, read-only
    # The service refuses it too, whoever asks.
    with pytest.raises(ValidationError) as raised:
        employee_update(employee=employee, actor=mallory, user=bob)
    assert "never moved to another user" in raised.value.message_dict["user"][0]
    assert Employee.objects.get(pk=employee.pk).user_id == alice.pk


def test_adding_an_employee_in_the_admin_creates_the_account_and_the_record(admin_client, settings):
    settings.PORTAL_MAIL_DOMAINS = ["example.org"]
    add = f"{CHANGELIST}add/"
    page = admin_client.get(add)
    assert page.status_code == 200
    assert "username" in page.context["adminform"].form.fields
    assert "user" not in page.context["adminform"].form.fields

    response = admin_client.post(
        add,
        {
            "username": "dora",
            "mail": "Dora.Diaz@Example.org",
            "given_name": "Dora",
            "surname": "Diaz",
            "department": "Sales",
            "directory_dn": "uid=dora,ou=people,dc=example,dc=org",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    employee = Employee.objects.get(user__username="dora")
    assert (employee.mail, employee.given_name, employee.department) == ("dora.diaz@example.org", "Dora", "Sales")
    assert not employee.user.has_usable_password()
    (event,) = employee_events("employee.created", employee)
    assert event.actor_name == "pkiadmin" and event.details["account"] == "created"
    assert event.details["mail"] == "dora.diaz@example.org"

    # An existing employee's account, an address at another domain: form errors, not a 500.
    refused = admin_client.post(add, {"username": "dora", "mail": "dora2@elsewhere.test"})
    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors
    assert "has an employee record already" in errors["username"][0]
    assert errors["mail"] == ["This CA does not certify addresses at elsewhere.test."]
    taken = admin_client.post(add, {"username": "eve", "mail": "dora.diaz@example.org"})
    assert taken.status_code == 200 and "already exists" in taken.context["adminform"].form.errors["mail"][0]
    assert not get_user_model().objects.filter(username="eve").exists()


def test_employees_are_never_deleted_in_the_admin_not_even_by_a_superuser(client, make_user, alice):
    make_user("root", superuser=True)
    assert client.login(username="root", password=PASSWORD)

    assert client.post(f"{CHANGELIST}{alice.employee.pk}/delete/", {"post": "yes"}).status_code == 403
    changelist = client.get(CHANGELIST)
    actions = [name for name, _ in changelist.context["action_form"].fields["action"].choices]
    assert "offboard_selected" in actions and "delete_selected" not in actions
    assert Employee.objects.filter(pk=alice.employee.pk).exists()


def test_offboarding_from_the_admin_still_works(admin_client, alice, issued):
    data = {"action": "offboard_selected", "_selected_action": [alice.employee.pk]}

    response = admin_client.post(CHANGELIST, {**data, "confirm": "yes"}, follow=True)

    messages = [str(m) for m in response.context["messages"]]
    assert any(m.startswith("Offboarded alice@example.org") for m in messages), messages
    issued.refresh_from_db()
    alice.refresh_from_db()
    assert issued.status == Certificate.Status.REVOKED and not alice.is_active


def test_a_revoked_certificate_no_longer_holds_the_mailbox(pki_admin, alice, issued):
    from enrollment.revocation.services import certificate_revoke

    certificate_revoke(serial=issued.serial, actor=pki_admin, reason="superseded")

    employee = employee_update(employee=alice.employee, actor=pki_admin, mail="alice.new@example.org", given_name="Alicia")

    assert (employee.mail, employee.given_name) == ("alice.new@example.org", "Alicia")
    (event,) = employee_events("employee.changed", employee)
    assert event.details["fields"] == ["given_name", "mail"]
    assert event.details["changes"]["given_name"] == {"old": "Alice", "new": "Alicia"}


def test_only_pki_administrators_change_employees_through_the_service(alice, bob):
    from core.exceptions import NotAllowed

    with pytest.raises(NotAllowed):
        employee_update(employee=alice.employee, actor=bob, department="Sales")
    with pytest.raises(NotAllowed):
        employee_create(actor=bob, username="eve", mail="eve@example.org")
