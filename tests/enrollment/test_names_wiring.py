"""Names through the admin, the demo bootstrap's employee_upsert and issuance: Employee.clean_fields
refuses what pki.names refuses; the approver's request page shows names escaped, with warnings."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from portal_testing import PASSWORD

from enrollment.models import Employee
from enrollment.services.employees import employee_create, employee_upsert
from enrollment.services.requests import certificate_request_approve, certificate_request_create

EMPLOYEES = "/admin/enrollment/employee/"


@pytest.fixture
def pki_admin(make_user):
    from enrollment.roles import PKI_ADMINISTRATORS

    return make_user("pkiadmin", groups=[PKI_ADMINISTRATORS], given_name="Pat", surname="Administrator")


@pytest.fixture
def admin_client(client, pki_admin):
    assert client.login(username="pkiadmin", password=PASSWORD)
    return client


def add_form(**changes) -> dict:
    return {
        "username": "dora", "mail": "dora@example.org", "given_name": "Dora", "surname": "Diaz", "department": "",
        "directory_dn": "", **changes,
    }


def test_the_admin_refuses_a_bidi_override_with_a_form_error_naming_it(admin_client):
    response = admin_client.post(f"{EMPLOYEES}add/", add_form(surname="Diaz\u202eexe.txt"))

    assert response.status_code == 200
    (error,) = response.context["adminform"].form.errors["surname"]
    assert error.startswith("The surname contains U+202E RIGHT-TO-LEFT OVERRIDE at position 5")
    errors = response.content.decode().split('id="id_surname_error"')[1].split("</ul>")[0]
    assert "U+202E" in errors and "\u202e" not in errors  # named, never echoed (only the input box keeps it)
    assert not Employee.objects.filter(mail="dora@example.org").exists()


def test_the_admin_refuses_a_non_ascii_local_part(admin_client):
    response = admin_client.post(f"{EMPLOYEES}add/", add_form(mail="dörte@example.org"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["mail"]
    assert not Employee.objects.filter(user__username="dora").exists()


def test_the_admin_stores_nfc(admin_client):
    response = admin_client.post(f"{EMPLOYEES}add/", add_form(given_name="Do\u0308rte"))

    assert response.status_code == 302, response.content.decode()[:2000]
    assert Employee.objects.get(mail="dora@example.org").given_name == "D\u00f6rte"


def test_employee_upsert_the_demo_bootstrap_and_seeding_path_refuses(make_user):
    user = make_user("mallory", employee=False)

    with pytest.raises(ValidationError) as raised:
        employee_upsert(user=user, mail="mallory@example.org", given_name="Mal\u200dlory", surname="M\x9bM")

    assert "U+200D ZERO WIDTH JOINER" in raised.value.message_dict["given_name"][0]
    assert "U+009B CONTROL SEQUENCE INTRODUCER (CSI)" in raised.value.message_dict["surname"][0]
    assert not Employee.objects.filter(user=user).exists()


def test_save_normalizes_even_without_full_clean(alice):
    employee = alice.employee
    employee.surname = "Arche\u0301r"
    employee.save(update_fields=["surname"])
    assert Employee.objects.get(pk=employee.pk).surname == "Arch\u00e9r"


def test_the_approver_sees_the_mixed_script_warning_and_the_escaped_names(pki, client, pki_admin, approver):
    employee = employee_create(
        actor=pki_admin, username="paypal", mail="pat@example.org", given_name="Pat", surname="P\u0430ypal"
    )
    request = certificate_request_create(employee=employee, submitted_by=approver)
    assert client.login(username="approver", password=PASSWORD)

    page = client.get(f"/admin/enrollment/certificaterequest/{request.pk}/change/").content.decode()

    assert "names as the certificate carries them" in page.lower()
    assert "Check: The surname mixes scripts (Latin, Cyrillic): P&lt;U+0430&gt;ypal;" in page
    assert "U+0430 CYRILLIC SMALL LETTER A looks like Latin &#x27;a&#x27;" in page
    assert "<code>P&lt;U+0430&gt;ypal</code>" in page


def test_a_row_from_before_the_rule_fails_issuance_readably(pki, alice, approver):
    Employee.objects.filter(pk=alice.employee.pk).update(surname="Archer\u202e")  # bypasses validation
    request = certificate_request_create(employee=Employee.objects.get(pk=alice.employee.pk), submitted_by=alice)

    result = certificate_request_approve(request_id=request.pk, approver=approver)

    assert result.state == "failed"
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in result.reason and "\u202e" not in result.reason


def test_a_non_ascii_name_is_issued_as_utf8string(pki, pki_admin, approver):
    from cryptography.x509.name import _ASN1Type
    from cryptography.x509.oid import NameOID

    employee = employee_create(
        actor=pki_admin, username="jurgen", mail="jurgen@example.org", given_name="Ju\u0308rgen", surname="Müller"
    )
    request = certificate_request_create(employee=employee, submitted_by=employee.user, key_type="ec-p256")

    result = certificate_request_approve(request_id=request.pk, approver=approver)

    assert result.state == "issued", result.reason
    (given,) = result.certificate.x509.subject.get_attributes_for_oid(NameOID.GIVEN_NAME)
    assert given.value == "J\u00fcrgen" and given._type == _ASN1Type.UTF8String


def test_an_idn_domain_typed_in_unicode_meets_the_domain_rule_in_a_labels(db, pki_admin, settings):
    settings.PORTAL_MAIL_DOMAINS = ["xn--bcher-kva.example"]

    employee = employee_create(actor=pki_admin, username="dora", mail="Dora@Bücher.example", given_name="Dora")

    assert employee.mail == "dora@xn--bcher-kva.example"
    with pytest.raises(ValidationError, match="does not certify addresses at other.example"):
        employee_create(actor=pki_admin, username="eve", mail="eve@other.example", given_name="Eve")
