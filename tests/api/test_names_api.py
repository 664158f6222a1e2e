"""Names through the API: refused with the one error shape (never a 500), NFC-normalized, and
the approver's view of a request shows them escaped, with the mixed-script warning."""

from __future__ import annotations

import itertools
import json
import unicodedata

import pytest
from api_testing import basic_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrollment.models import Employee
from enrollment.pki import names
from enrollment.services.employees import employee_create
from enrollment.services.requests import certificate_request_create


def post_json(client, url: str, body: dict):
    # json.dumps escapes everything to ASCII: a lone surrogate travels as \ud800, as an attacker would send it.
    return client.post(url, data=json.dumps(body), content_type="application/json")


def assert_error_shape(response, field: str) -> str:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and isinstance(error["message"], str)
    return " ".join(error["fields"][field])


@pytest.mark.parametrize(
    "field, value, named",
    [
        ("surname", "Archer\u202egnp.exe", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("given_name", "Al\u200bice", "U+200B ZERO WIDTH SPACE"),
        ("given_name", "Alice\r\nBcc: eve", "U+000D CARRIAGE RETURN (CR)"),
        ("surname", "Archer\x07", "U+0007 ALERT (BEL)"),
        ("surname", "Arc\x85her", "U+0085 NEXT LINE (NEL)"),  # inside: at the ends, white space is trimmed
        ("department", "\ufeffSales", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
    ],
)
def test_hostile_names_are_a_400_naming_the_character(pki_admin, field, value, named):
    response = post_json(
        basic_client(pki_admin), "/api/v1/employees/", {"username": "eve", "mail": "eve@example.org", field: value}
    )

    message = assert_error_shape(response, field)
    assert named in message and value not in message
    assert not Employee.objects.filter(mail="eve@example.org").exists()


def test_a_change_through_the_api_is_refused_too(pki_admin, alice):
    response = basic_client(pki_admin).patch(
        f"/api/v1/employees/{alice.employee.pk}/", data=json.dumps({"surname": "Ar\u2067cher"}),
        content_type="application/json",
    )

    assert "U+2067 RIGHT-TO-LEFT ISOLATE" in assert_error_shape(response, "surname")
    assert Employee.objects.get(pk=alice.employee.pk).surname == "Archer"


def test_names_are_stored_nfc_and_idn_domains_as_a_labels(pki_admin):
    response = post_json(
        basic_client(pki_admin),
        "/api/v1/employees/",
        {"username": "jurgen", "mail": "jurgen@münchen.de", "given_name": "Ju\u0308rgen", "surname": "Mu\u0308ller"},
    )

    assert response.status_code == 201, response.content
    employee = Employee.objects.get(user__username="jurgen")
    assert (employee.given_name, employee.surname) == ("J\u00fcrgen", "M\u00fcller")
    assert employee.mail == "jurgen@xn--mnchen-3ya.de"


def test_the_request_shows_the_approver_escaped_names_and_the_warning(pki, pki_admin, approver):
    employee = employee_create(
        actor=pki_admin, username="paypal", mail="p@example.org", given_name="Pat", surname="P\u0430ypal"
    )
    request = certificate_request_create(employee=employee, submitted_by=approver)

    body = basic_client(approver).get(f"/api/v1/requests/{request.pk}/").json()

    assert body["names"]["escaped"]["surname"] == "P<U+0430>ypal"
    (warning,) = body["names"]["warnings"]
    assert "mixes scripts (Latin, Cyrillic)" in warning and "U+0430 CYRILLIC SMALL LETTER A" in warning


_usernames = itertools.count()
hostile_text = st.text(
    st.one_of(
        st.characters(exclude_categories=()),
        st.characters(categories=["Cs"]),
        st.sampled_from("\u202e\u200b\ufeff\r\n\t\x07\x85\u2028\u0430a\u00e9&;-"),
    ),
    max_size=70,
)


@given(given_name=hostile_text, surname=hostile_text, department=hostile_text, local=hostile_text)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_no_name_or_mailbox_gives_a_500(pki_admin, given_name, surname, department, local):
    number = next(_usernames)
    body = {
        "username": f"fuzz{number}",
        "mail": f"{local}{number}@example.org",
        "given_name": given_name,
        "surname": surname,
        "department": department,
    }

    response = post_json(basic_client(pki_admin), "/api/v1/employees/", body)

    assert response.status_code in (201, 400), response.content
    if response.status_code == 400:
        error = response.json()["error"]
        assert error["code"] and isinstance(error["fields"], dict)
        return
    employee = Employee.objects.get(user__username=f"fuzz{number}")
    for value in (employee.given_name, employee.surname, employee.department):
        assert names.name_problem(value) == "" and unicodedata.is_normalized("NFC", value)
    assert employee.mail.isascii()
