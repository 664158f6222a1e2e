"""Names from the directory (the real slapd): a log-in whose entry has a control or bidi character
in a name still logs in, writes no such name, and says why in the log, naming the character."""

from __future__ import annotations

import logging

import pytest
from slapd_server import DIRECTORY_PASSWORDS, person_dn

from enrollment.models import Employee
from enrollment.pki import names


def login(client, username: str):
    return client.post("/login/", {"username": username, "password": DIRECTORY_PASSWORDS[username]})


@pytest.mark.parametrize(
    "attribute, value, named",
    [
        ("givenName", "Bob\u202eboB", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("sn", "Ba\u200bker", "U+200B ZERO WIDTH SPACE"),
        ("sn", "Baker\r\nX-Injected: 1", "U+000D CARRIAGE RETURN (CR)"),
        ("givenName", "Bo\x1bb", "U+001B ESCAPE (ESC)"),
    ],
)
def test_a_hostile_name_in_the_directory_is_refused_without_a_500(
    client, ldap_login, directory, caplog, attribute, value, named
):
    directory.replace_values(person_dn("bob"), attribute, [value])

    with caplog.at_level(logging.WARNING):
        response = login(client, "bob")

    assert response.status_code in (200, 302)  # logged in, or a form error: never a 500
    for employee in Employee.objects.all():
        for field in Employee.NAME_FIELDS:
            assert names.name_problem(getattr(employee, field)) == ""
    assert named in caplog.text and value not in caplog.text


def test_a_decomposed_name_in_the_directory_is_stored_nfc(client, ldap_login, directory):
    directory.replace_values(person_dn("bob"), "sn", ["Bakeŕ".replace("ŕ", "r\u0301")])

    assert login(client, "bob").status_code == 302

    assert Employee.objects.get(user__username="bob").surname == "Bake\u0155"
