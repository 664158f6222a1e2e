"""The "Find in the directory" box on the admin's Add employee page, without a directory server:
no directory configured, a directory that is down, who may search, what is offered for picking
and what is not. The searches against a real slapd and the whole pick-and-create flow are in
tests/directory/test_directory_people.py."""

from __future__ import annotations

import re
import socket
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from portal_testing import PASSWORD

from enrollment import admin_directory_pick
from enrollment.directory.people import DirectoryPeople, DirectoryPerson, search_words
from enrollment.models import Employee

pytestmark = pytest.mark.django_db

ADD = reverse("admin:enrollment_employee_add")
PEOPLE_DN = "ou=people,dc=example,dc=org"


def _client(user) -> Client:
    client = Client()
    assert client.login(username=user.get_username(), password=PASSWORD)
    return client


def _section(response) -> str:
    found = re.search(r'<section class="module directory-pick".*?</section>', response.content.decode(), re.S)
    assert found, "no directory search on the page"
    return found.group(0)


def _person(uid: str, **values) -> DirectoryPerson:
    defaults = {"given_name": uid.capitalize(), "surname": "Example", "mail": f"{uid}@example.org"}
    return DirectoryPerson(dn=f"uid={uid},{PEOPLE_DN}", login_name=uid, **{**defaults, **values})




@pytest.fixture
def directory_finds(monkeypatch, settings):
    """The directory (configured, not asked) finds these people; records the texts searched for."""
    settings.PORTAL_LDAP_URI = "ldap://directory.invalid"
    settings.PORTAL_LDAP_USER_BASE_DN = PEOPLE_DN
    searched = []

    def found(*people):
        def search(*, text, limit):
            search_words(text)  # the real refusals of text that cannot be searched
            searched.append(text)
            return DirectoryPeople(people=list(people))

        monkeypatch.setattr(admin_directory_pick, "directory_people_search", search)
        return searched

    return found


def test_without_a_directory_the_page_says_so_and_the_form_still_works(settings, pki_admin):
    settings.PORTAL_LDAP_URI = ""
    client = _client(pki_admin)

    for response in (client.get(ADD), client.get(ADD, {"find": "alice"})):
        assert response.status_code == 200
        section = _section(response)
        assert "No directory is configured" in section and "PORTAL_LDAP_URI" in section
        assert response.context["directory_pick"]["matches"] == []
    # Searching without a directory: the message, not a search box.
    assert 'name="find"' not in _section(client.get(ADD, {"find": "alice"}))

    saved = client.post(ADD, {"given_name": "Erin", "surname": "East", "mail": "erin@example.org", "department": ""})
    assert saved.status_code == 302 and Employee.objects.filter(mail="erin@example.org").exists()


def test_a_directory_that_is_down_is_a_readable_message_not_an_error_page(settings, pki_admin):
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.PORTAL_LDAP_URI = f"ldap://127.0.0.1:{port}"
    settings.PORTAL_LDAP_USER_BASE_DN = PEOPLE_DN
    settings.PORTAL_LDAP_BIND_DN = "cn=portal,dc=example,dc=org"
    settings.PORTAL_LDAP_BIND_PASSWORD = "bind-secret-never-shown"
    settings.PORTAL_LDAP_TIMEOUT = 2

    response = _client(pki_admin).get(ADD, {"find": "alice"})

    assert response.status_code == 200
    section = _section(response)
    assert f"The directory could not be searched: ldap://127.0.0.1:{port}: cannot connect" in section
    assert "bind-secret-never-shown" not in response.content.decode()
    assert response.context["adminform"]  # type the details instead


def test_broken_directory_settings_are_a_message_too(settings, pki_admin):
    settings.PORTAL_LDAP_URI = "ldap://directory.invalid"
    settings.PORTAL_LDAP_USER_BASE_DN = ""

    response = _client(pki_admin).get(ADD, {"find": "alice"})

    assert response.status_code == 200 and "PORTAL_LDAP_USER_BASE_DN must name" in _section(response)


def test_only_those_who_may_add_employees_search(directory_finds, pki_admin, approver, alice):
    searched = directory_finds(_person("carol"))

    assert _client(approver).get(ADD, {"find": "carol"}).status_code == 403  # approvers view employees only
    assert _client(alice).get(ADD, {"find": "carol"}).status_code == 302  # not staff: the log-in page
    assert Client().get(ADD, {"find": "carol"}).status_code == 302
    assert searched == []

    assert _client(pki_admin).get(ADD, {"find": "carol"}).status_code == 200
    assert searched == ["carol"]


def test_picking_fills_in_the_form_and_keeps_the_popup(directory_finds, pki_admin):
    directory_finds(_person("carol", department="Sales"))

    response = _client(pki_admin).get(ADD, {"find": "carol", "_popup": "1"})

    (match,) = response.context["directory_pick"]["matches"]
    query = {name: values[0] for name, values in parse_qs(urlsplit(match.pick_url).query).items()}
    assert query == {
        "given_name": "Carol",
        "surname": "Example",
        "mail": "carol@example.org",
        "department": "Sales",
        "directory_dn": f"uid=carol,{PEOPLE_DN}",
        "username": "carol",
        "from_directory": "1",
        "_popup": "1",
    }
    section = _section(response)
    assert 'name="_popup" value="1"' in section  # a new search stays in the popup too
    # A strict CSP: links and a GET form, no script and no inline style.
    assert "<script" not in section and "style=" not in section and " on" not in section.replace(" one", "")


def test_who_is_not_offered_and_why(directory_finds, pki_admin, alice, settings):
    settings.PORTAL_MAIL_DOMAINS = ["example.org"]
    directory_finds(
        _person("alice", mail="Alice@Example.org"),  # her employee record, by mailbox (case aside)
        _person("ghost", mail=""),
        _person("outsider", mail="outsider@elsewhere.test"),
        _person("bob"),
    )

    response = _client(pki_admin).get(ADD, {"find": "example"})

    matches = {match.person.login_name: match for match in response.context["directory_pick"]["matches"]}
    assert matches["alice"].employee == alice.employee and not matches["alice"].pick_url
    assert (matches["ghost"].reason, matches["ghost"].pick_url) == ("No mailbox in the directory entry", "")
    assert "does not certify addresses at elsewhere.test" in matches["outsider"].reason
    assert not matches["outsider"].pick_url and matches["bob"].pick_url
    section = _section(response)
    assert section.count('class="directory-pick-use"') == 1
    assert reverse("admin:enrollment_employee_change", args=[alice.employee.pk]) in section


def test_an_employee_is_recognized_by_directory_dn_or_account_too(directory_finds, pki_admin, make_user):
    moved = make_user("erin.old")  # another account name and mailbox, the same entry
    moved.employee.directory_dn = "uid=erin, OU=People, DC=example, DC=org"  # spelled otherwise
    moved.employee.save()
    renamed = make_user("frank")
    directory_finds(_person("erin", mail="erin.new@example.org"), _person("frank", mail="frank.new@example.org"))

    response = _client(pki_admin).get(ADD, {"find": "example"})

    matches = {match.person.login_name: match for match in response.context["directory_pick"]["matches"]}
    assert matches["erin"].employee == moved.employee and not matches["erin"].pick_url
    assert matches["frank"].employee == renamed.employee and not matches["frank"].pick_url


def test_an_existing_account_is_never_linked_by_picking(directory_finds, pki_admin, make_user):
    make_user("dave", employee=False)  # a local account of the same name, no employee record
    directory_finds(_person("dave"))
    client = _client(pki_admin)

    response = client.get(ADD, {"find": "dave"})

    (match,) = response.context["directory_pick"]["matches"]
    assert match.existing_account == "dave"
    query = {
        name: values[0] for name, values in parse_qs(urlsplit(match.pick_url).query, keep_blank_values=True).items()
    }
    assert query["username"] == ""
    assert "An account named dave exists already" in _section(response)
    # Saving the picked details as they are does not take the account: the form asks.
    fields = ("given_name", "surname", "mail", "department", "directory_dn", "username")
    saved = client.post(ADD, {name: query[name] for name in fields})
    assert saved.status_code == 200 and "type its log-in name" in str(saved.context["adminform"].form.errors)
    assert not Employee.objects.filter(mail="dave@example.org").exists()


def test_search_text_errors_are_form_errors(directory_finds, pki_admin):
    searched = directory_finds(_person("carol"))
    client = _client(pki_admin)

    for text, message in (("", "This field is required"), ("x", "at least 2"), ("y" * 101, "at most 100")):
        response = client.get(ADD, {"find": text})
        assert response.status_code == 200
        assert message in str(response.context["directory_pick"]["form"].errors["find"])
    assert searched == []
