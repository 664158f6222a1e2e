"""Finding people in the directory (enrollment/directory/people.py) and picking one on the admin's
"Add employee" page: the filter's escaping and the mapping without a server, then the real slapd
(searches, hostile text, limits, an outage) and the admin flow from search to created employee."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from portal_testing import PASSWORD
from slapd_server import PEOPLE_DN, person_dn

from audit.models import AuditEvent
from enrollment.directory.client import DirectoryUnavailable
from enrollment.directory.config import DirectoryConfig
from enrollment.directory.people import (
    DirectoryNotConfigured,
    DirectorySearchRefused,
    directory_people_search,
    login_attribute,
    people_filter,
    person_from_entry,
    search_words,
)
from enrollment.models import Employee
from enrollment.roles import PKI_ADMINISTRATORS

OPENLDAP = DirectoryConfig(uri="ldap://directory.example.org", user_base_dn=PEOPLE_DN)
ACTIVE_DIRECTORY = DirectoryConfig(
    uri="ldaps://dc.example.org",
    user_base_dn="OU=Staff,DC=example,DC=org",
    preset="activedirectory",
    user_filter="(sAMAccountName=%(user)s)",
)
ADD = reverse("admin:enrollment_employee_add")
# People the tests add next to the demo ones: a department, and names with filter characters.
ZOE_DN = f"uid=zoe,{PEOPLE_DN}"
STAR_DN = f"uid=star,{PEOPLE_DN}"


# --- The filter and the mapping (no server) ------------------------------------------------------


def test_every_word_is_escaped_so_filter_characters_match_only_as_text():
    search = people_filter(OPENLDAP, search_words(")(uid=* ali\\ce"))

    assert search.startswith("(&(uid=*)(|(cn=*\\29\\28uid=\\2a*)")
    assert "(uid=*\\29\\28uid=\\2a*)" in search and "(mail=*ali\\5cce*)" in search
    # Nothing the person typed opens or closes a clause: the parentheses balance as the code built them.
    assert search.count("(") == search.count(")") == 1 + 1 + 2 * (1 + 6)
    assert people_filter(OPENLDAP, ["*"]) == (
        "(&(uid=*)(|(cn=*\\2a*)(displayName=*\\2a*)(givenName=*\\2a*)(sn=*\\2a*)(mail=*\\2a*)(uid=*\\2a*)))"
    )


def test_active_directory_searches_enabled_people_by_sam_account_name():
    search = people_filter(ACTIVE_DIRECTORY, ["ann"])

    assert search.startswith(
        "(&(sAMAccountName=*)(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2))"
    )
    assert "(sAMAccountName=*ann*)" in search and "(uid=" not in search


def test_a_custom_login_filter_is_kept_and_names_the_login_attribute():
    custom = DirectoryConfig(
        uri="ldap://d.example.org",
        user_base_dn=PEOPLE_DN,
        user_filter="(&(objectClass=inetOrgPerson)(employeeNumber=%(user)s))",
    )

    assert login_attribute(custom) == "employeeNumber"
    assert people_filter(custom, ["42"]).startswith("(&(&(objectClass=inetOrgPerson)(employeeNumber=*))(|")
    assert login_attribute(OPENLDAP) == "uid" and login_attribute(ACTIVE_DIRECTORY) == "sAMAccountName"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "at least 2"),
        ("  a  ", "at least 2"),
        ("x" * 101, "at most 100"),
        ("ali\x00ce", "control or invisible"),
        ("ali\u202ece", "control or invisible"),
        ("a b c d e f", "at most 5 words"),
    ],
)
def test_text_that_cannot_be_searched_is_refused_before_the_directory_is_asked(text, why):
    with pytest.raises(DirectorySearchRefused, match=why):
        # A config no server answers at: a refusal must come before any connection.
        directory_people_search(text=text, config=DirectoryConfig(uri="ldap://192.0.2.1", user_base_dn=PEOPLE_DN))


def test_entries_map_to_the_employee_fields_per_preset():
    openldap = person_from_entry(
        OPENLDAP,
        "uid=zoe,ou=people,dc=example,dc=org",
        {
            "UID": [b"zoe"],
            "givenName": ["Zoë".encode()],
            "sn": [b"Oakes"],
            "mail": [b"Zoe@Example.org"],
            "departmentNumber": [b"42"],
            "cn": [b"Zoe Oakes"],
        },
    )
    assert (openldap.login_name, openldap.given_name, openldap.surname, openldap.mail) == (
        "zoe",
        "Zoë",
        "Oakes",
        "Zoe@Example.org",
    )
    assert (openldap.department, openldap.name) == ("42", "Zoe Oakes")  # no ou: departmentNumber

    ad = person_from_entry(
        ACTIVE_DIRECTORY,
        "CN=Ann Lee,OU=Staff,DC=example,DC=org",
        {
            "sAMAccountName": [b"alee"],
            "givenName": [b"Ann"],
            "sn": [b"Lee"],
            "mail": [b"ann.lee@example.org"],
            "department": [b"Finance"],
            "displayName": [b"Lee, Ann"],
            "ou": [b"not this one"],
        },
    )
    assert (ad.login_name, ad.department, ad.name) == ("alee", "Finance", "Lee, Ann")

    bare = person_from_entry(OPENLDAP, "uid=x,ou=people,dc=example,dc=org", {"sn": [b"\xff"]})
    assert (bare.mail, bare.login_name, bare.surname, bare.name) == ("", "", "\ufffd", "\ufffd")


def test_no_directory_configured_is_its_own_error(settings):
    settings.PORTAL_LDAP_URI = ""

    with pytest.raises(DirectoryNotConfigured, match="No directory is configured"):
        directory_people_search(text="alice")


# --- The real slapd ----------------------------------------------------------------------------


@pytest.fixture
def more_people(directory):
    """Two more people: one with a department and parentheses in a name, one with an asterisk."""
    directory.add_entry(
        ZOE_DN,
        ["inetOrgPerson"],
        {
            "uid": "zoe",
            "cn": "Zoë Oakes (Sales)",
            "givenName": "Zoë",
            "sn": "Oakes",
            "mail": "zoe@example.org",
            "ou": "Sales",
        },
    )
    directory.add_entry(
        STAR_DN,
        ["inetOrgPerson"],
        {"uid": "star", "cn": "Sam St*r", "givenName": "Sam", "sn": "St*r", "mail": "star@example.org"},
    )
    yield directory
    directory.delete_entry(ZOE_DN)
    directory.delete_entry(STAR_DN)


def test_search_finds_people_by_any_word_of_their_names_mail_or_log_in(ldap_settings, more_people):
    found = directory_people_search(text="zoë oakes")

    assert [person.dn for person in found.people] == [ZOE_DN] and not found.truncated
    zoe = found.people[0]
    assert (zoe.login_name, zoe.given_name, zoe.surname, zoe.mail, zoe.department) == (
        "zoe",
        "Zoë",
        "Oakes",
        "zoe@example.org",
        "Sales",
    )
    assert [person.login_name for person in directory_people_search(text="carol@example").people] == ["carol"]
    assert [person.login_name for person in directory_people_search(text="CLARK").people] == ["carol"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("t*", ["star"]),  # the literal asterisk in Sam St*r's names, not "everyone"
        ("**", []),
        ("St*r", ["star"]),
        ("S*r", []),
        (")(uid=*", []),
        ("*)(|(uid=*", []),
        ("(Sales)", ["zoe"]),  # literal parentheses
        ("\\2a", []),
    ],
)
def test_hostile_text_matches_only_as_text(ldap_settings, more_people, text, expected):
    assert [person.login_name for person in directory_people_search(text=text).people] == expected


def test_results_are_bounded_and_say_when_more_matched(ldap_settings, more_people):
    found = directory_people_search(text="example.org", limit=2)
    assert len(found.people) == 2 and found.truncated

    everyone = directory_people_search(text="example.org", limit=50)
    # dave has no mail, so "example.org" is not in his entry; the rest are found, sorted by name.
    assert [person.login_name for person in everyone.people] == ["alice", "bob", "carol", "star", "zoe"]
    assert not everyone.truncated


def test_an_unreachable_directory_is_a_readable_error(ldap_settings, directory):
    directory.stop()
    with pytest.raises(DirectoryUnavailable, match=f"{directory.uri}: cannot connect"):
        directory_people_search(text="alice")

    ldap_settings.PORTAL_LDAP_BIND_PASSWORD = "wrong-password"
    directory.start()
    with pytest.raises(DirectoryUnavailable, match="bind as .* refused: invalidCredentials") as refused:
        directory_people_search(text="alice")
    assert "wrong-password" not in str(refused.value)


# --- Picking a person on the admin's add page ---------------------------------------------------


@pytest.fixture
def pki_admin_client(make_user):
    make_user("pkiadmin", groups=[PKI_ADMINISTRATORS], given_name="Petra", surname="Admin")
    client = Client()
    assert client.login(username="pkiadmin", password=PASSWORD)
    return client


def _matches(response) -> dict:
    assert response.status_code == 200
    return {match.person.login_name: match for match in response.context["directory_pick"]["matches"]}


def test_search_pick_and_create_an_employee_through_the_admin(ldap_settings, more_people, pki_admin_client, alice):
    alice.employee.directory_dn = person_dn("alice")
    alice.employee.save()

    search = pki_admin_client.get(ADD, {"find": "example.org"})
    matches = _matches(search)
    page = search.content.decode()
    assert set(matches) == {"alice", "bob", "carol", "star", "zoe"}
    # alice is an employee already: marked, linked to her record, not offered.
    assert matches["alice"].employee == alice.employee and not matches["alice"].pick_url
    assert (
        "Already an employee" in page and reverse("admin:enrollment_employee_change", args=[alice.employee.pk]) in page
    )
    assert page.count('class="directory-pick-use"') == 4

    pick = pki_admin_client.get(matches["zoe"].pick_url)
    assert pick.status_code == 200
    initial = pick.context["adminform"].form.initial
    assert {
        name: initial[name] for name in ("given_name", "surname", "mail", "department", "directory_dn", "username")
    } == {
        "given_name": "Zoë",
        "surname": "Oakes",
        "mail": "zoe@example.org",
        "department": "Sales",
        "directory_dn": ZOE_DN,
        "username": "zoe",
    }
    assert f"Filled in from the directory entry {ZOE_DN}" in pick.content.decode()
    assert 'value="Zoë"' in pick.content.decode()  # the form's input, filled in without any script

    query = {name: values[0] for name, values in parse_qs(urlsplit(matches["zoe"].pick_url).query).items()}
    saved = pki_admin_client.post(
        ADD, {name: query[name] for name in initial if name in query and name != "from_directory"}
    )
    assert saved.status_code == 302
    zoe = Employee.objects.get(mail="zoe@example.org")
    assert (zoe.user.username, zoe.given_name, zoe.department, zoe.directory_dn) == ("zoe", "Zoë", "Sales", ZOE_DN)
    assert not zoe.user.has_usable_password()
    created = AuditEvent.objects.get(action="employee.created", actor_name="pkiadmin")
    assert created.details["mail"] == "zoe@example.org"

    # Now she is marked as well, and not offered a second time.
    again = _matches(pki_admin_client.get(ADD, {"find": "zoe"}))
    assert again["zoe"].employee == zoe and not again["zoe"].pick_url


def test_the_mail_domain_rule_still_applies_to_a_picked_person(ldap_settings, more_people, pki_admin_client):
    ldap_settings.PORTAL_MAIL_DOMAINS = ["example.com"]

    matches = _matches(pki_admin_client.get(ADD, {"find": "zoe"}))

    assert not matches["zoe"].pick_url and "does not certify addresses at example.org" in matches["zoe"].reason
    forged = pki_admin_client.post(
        ADD,
        {
            "given_name": "Zoë",
            "surname": "Oakes",
            "mail": "zoe@example.org",
            "department": "",
            "directory_dn": ZOE_DN,
            "username": "zoe",
        },
    )
    assert forged.status_code == 200 and "does not certify" in str(forged.context["adminform"].form.errors)
    assert not Employee.objects.filter(mail="zoe@example.org").exists()


@pytest.mark.parametrize(
    "text", ["*", ")(uid=*", "*)(|(objectClass=*", "a" * 5000, "\u202e", "%00", "é" * 101, "\\", "\\2a"]
)
def test_hostile_search_text_on_the_admin_page_is_no_error_page_and_lists_nobody_extra(
    ldap_settings, directory, pki_admin_client, text
):
    response = pki_admin_client.get(ADD, {"find": text})

    assert response.status_code == 200
    pick = response.context["directory_pick"]
    assert [match.person.login_name for match in pick["matches"]] == []
    assert not pick["error"]  # the directory answered, or was not asked
    assert pick["searched"] or pick["form"].errors["find"]
    assert response.context["adminform"]  # the add form is still there


def test_a_nul_in_the_search_text_is_refused_by_the_site_before_the_page(ldap_settings, directory, pki_admin_client):
    response = pki_admin_client.get(ADD, {"find": "ali\x00ce"})

    # portal/middleware.py: a readable 400 for any NUL in a query parameter, never an error page.
    assert response.status_code == 400 and "NUL character" in response.content.decode()
