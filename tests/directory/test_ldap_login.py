"""Log-in with directory credentials (django-auth-ldap) against the real slapd: pages, attributes, roles, outages, audit."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from portal_testing import PASSWORD
from slapd_server import DIRECTORY_PASSWORDS, GROUPS_DN, PLACEHOLDER_MEMBER, group_dn, person_dn

from audit.models import AuditEvent
from enrollment.models import Employee
from enrollment.roles import APPROVERS, AUDITORS, KEY_RECOVERY_AGENTS
from portal.ldap_auth import LDAP_BACKEND, MODEL_BACKEND, authentication_backends, group_search_base

User = get_user_model()
LOGIN_ERROR = "Please enter a correct username and password"
ADMIN_LOGIN_ERROR = "Please enter the correct username and password for a staff account"


def login(client, username: str, password: str | None = None, *, url: str = "/login/"):
    password = DIRECTORY_PASSWORDS[username] if password is None else password
    return client.post(url, {"username": username, "password": password})


def logged_in_as(client) -> str:
    response = client.get("/")
    return response.wsgi_request.user.get_username() if response.status_code == 200 else ""


def roles(user) -> set[str]:
    return set(User.objects.get(pk=user.pk).groups.values_list("name", flat=True))


# --- Log-in pages ----------------------------------------------------------------------


def test_directory_login_on_the_login_page_copies_the_entry(client, ldap_login):
    assert not User.objects.filter(username="bob").exists()

    response = login(client, "bob")

    assert response.status_code == 302 and response["Location"] == "/"
    assert client.session[BACKEND_SESSION_KEY] == LDAP_BACKEND
    assert logged_in_as(client) == "bob"
    user = User.objects.get(username="bob")
    assert (user.first_name, user.last_name, user.email) == ("Bob", "Baker", "bob@example.org")
    assert not user.has_usable_password()  # the directory keeps the password
    assert not user.is_staff and roles(user) == set()
    employee = Employee.objects.get(user=user)
    assert (employee.given_name, employee.surname, employee.mail) == ("Bob", "Baker", "bob@example.org")
    assert employee.directory_dn == person_dn("bob")


def test_wrong_password_is_a_form_error_and_creates_no_user(client, ldap_login):
    users = User.objects.count()

    response = login(client, "bob", "not-bobs-password")
    unknown = login(client, "nobody", "whatever-password")

    for answer in (response, unknown):
        assert answer.status_code == 200
        assert LOGIN_ERROR in answer.content.decode()
    assert User.objects.count() == users and not Employee.objects.exists()
    assert logged_in_as(client) == ""


def test_the_next_login_updates_user_and_employee(client, ldap_login, directory):
    login(client, "bob")
    employee = Employee.objects.get(user__username="bob")
    Employee.objects.filter(pk=employee.pk).update(department="Sales")  # the portal's own field
    client.logout()
    directory.replace_values(person_dn("bob"), "givenName", ["Robert"])
    directory.replace_values(person_dn("bob"), "sn", ["Baker-Smith"])
    directory.replace_values(person_dn("bob"), "mail", ["robert.baker@example.org"])

    assert login(client, "bob").status_code == 302

    user = User.objects.get(username="bob")
    assert (user.first_name, user.last_name, user.email) == ("Robert", "Baker-Smith", "robert.baker@example.org")
    updated = Employee.objects.get(user=user)
    assert updated.pk == employee.pk
    assert (updated.given_name, updated.surname, updated.mail) == ("Robert", "Baker-Smith", "robert.baker@example.org")
    assert updated.department == "Sales"


def test_an_entry_without_mail_gets_no_employee_but_its_role(client, ldap_login):
    assert login(client, "dave").status_code == 302

    user = User.objects.get(username="dave")
    assert not Employee.objects.filter(user=user).exists()
    assert roles(user) == {AUDITORS} and user.is_staff


def test_a_mailbox_another_employee_has_still_logs_in_with_a_warning(client, ldap_login, make_user, caplog):
    other = make_user("robert")
    Employee.objects.filter(user=other).update(mail="bob@example.org")

    with caplog.at_level(logging.WARNING):
        assert login(client, "bob").status_code == 302

    assert not Employee.objects.filter(user__username="bob").exists()
    assert Employee.objects.get(mail="bob@example.org").user == other
    assert "employee record not updated" in caplog.text


def test_a_linked_local_account_of_the_same_name_is_the_directory_users(client, ldap_login, make_user):
    # Was: any local account of the same name was taken over. Now only after an explicit link.
    local = make_user("carol", given_name="Caroline", surname="Local")
    call_command("link_directory_account", "carol", "--dn", person_dn("carol"), stdout=io.StringIO())

    assert login(client, "carol").status_code == 302

    employee = Employee.objects.get(user=local)
    assert (employee.given_name, employee.surname, employee.directory_dn) == ("Carol", "Clark", person_dn("carol"))
    assert User.objects.filter(username="carol").count() == 1


def test_admin_login_with_directory_credentials(client, ldap_login):
    response = login(client, "carol", url="/admin/login/?next=/admin/")

    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/enrollment/certificaterequest/").status_code == 200  # an approver's list


def test_admin_login_refuses_a_directory_user_without_a_role(client, ldap_login):
    response = login(client, "bob", url="/admin/login/?next=/admin/")

    assert response.status_code == 200
    assert ADMIN_LOGIN_ERROR in response.content.decode()


# --- Roles from directory groups ---------------------------------------------------------


def test_group_membership_grants_the_role_and_losing_it_takes_it_away(client, ldap_login, directory):
    login(client, "carol")
    carol = User.objects.get(username="carol")
    assert roles(carol) == {APPROVERS} and carol.is_staff
    assert carol.has_perm("enrollment.approve_certificaterequest")
    # Roles the directory does not decide are the portal's business.
    carol.groups.add(Group.objects.get(name=KEY_RECOVERY_AGENTS))
    client.logout()
    directory.replace_values(group_dn("approvers"), "member", [PLACEHOLDER_MEMBER])

    login(client, "carol")

    carol = User.objects.get(username="carol")
    assert roles(carol) == {KEY_RECOVERY_AGENTS}
    assert not carol.has_perm("enrollment.approve_certificaterequest")
    assert carol.is_staff  # still in a portal role
    event = AuditEvent.objects.filter(action="auth.roles_changed").order_by("-id").first()
    assert event.details["revoked"] == [APPROVERS] and event.details["granted"] == []


def test_losing_the_last_role_takes_away_the_admin(client, ldap_login, directory):
    login(client, "dave")
    assert User.objects.get(username="dave").is_staff
    client.logout()
    directory.replace_values(group_dn("auditors"), "member", [PLACEHOLDER_MEMBER])

    login(client, "dave")

    dave = User.objects.get(username="dave")
    assert roles(dave) == set() and not dave.is_staff
    assert login(client, "dave", url="/admin/login/?next=/admin/").status_code == 200


def test_a_role_without_a_group_dn_is_left_alone(client, ldap_login, make_user, directory):
    ldap_login.PORTAL_LDAP_AUDITORS_GROUP_DN = ""  # the directory no longer decides who audits
    directory.replace_values(group_dn("admins"), "member", [PLACEHOLDER_MEMBER, person_dn("carol")])
    login(client, "carol")
    carol = User.objects.get(username="carol")
    carol.groups.add(Group.objects.get(name=AUDITORS))
    client.logout()

    login(client, "carol")

    assert roles(carol) == {APPROVERS, AUDITORS, "PKI administrators"}


@pytest.fixture
def nested_groups(ldap_login, directory, monkeypatch):
    """The AD preset's nested group type, against slapd's groupOfNames: approvers contains team-leads contains carol."""
    from dataclasses import replace

    from enrollment.directory import config

    monkeypatch.setitem(config.PRESETS, "openldap", replace(config.PRESETS["openldap"], group_type="nestedActiveDirectory"))
    team_leads = f"cn=team-leads,{GROUPS_DN}"
    directory.delete_entry(team_leads)
    directory.add_entry(team_leads, ["groupOfNames"], {"cn": "team-leads", "member": [person_dn("carol")]})
    directory.replace_values(group_dn("approvers"), "member", [PLACEHOLDER_MEMBER, team_leads])
    yield team_leads
    directory.delete_entry(team_leads)


def test_nested_group_members_get_the_role(client, ldap_login, nested_groups, directory):
    login(client, "carol")
    assert roles(User.objects.get(username="carol")) == {APPROVERS}
    client.logout()

    directory.replace_values(nested_groups, "member", [PLACEHOLDER_MEMBER])
    login(client, "carol")

    assert roles(User.objects.get(username="carol")) == set()


def test_active_directory_preset_settings(settings):
    from django_auth_ldap.config import NestedActiveDirectoryGroupType

    from enrollment.directory.config import DirectoryConfig
    from portal.ldap_auth import auth_ldap_settings

    settings.PORTAL_LDAP_URI = "ldaps://dc1.corp.example.com"
    settings.PORTAL_LDAP_PRESET = "activedirectory"
    settings.PORTAL_LDAP_USER_BASE_DN = "OU=Staff,DC=corp,DC=example,DC=com"
    settings.PORTAL_LDAP_USER_FILTER = ""
    settings.PORTAL_LDAP_GROUP_BASE_DN = ""
    settings.PORTAL_LDAP_START_TLS = False
    auth = auth_ldap_settings(DirectoryConfig.from_settings())

    assert auth["USER_SEARCH"].filterstr == "(sAMAccountName=%(user)s)"
    assert "sAMAccountName" in auth["USER_ATTRLIST"]
    assert isinstance(auth["GROUP_TYPE"], NestedActiveDirectoryGroupType)
    assert auth["GROUP_SEARCH"].base_dn == "DC=corp,DC=example,DC=com"
    assert auth["GROUP_SEARCH"].filterstr == "(objectClass=group)"


def test_group_base_defaults_to_the_naming_context(ldap_login):
    from enrollment.directory.config import DirectoryConfig

    config = DirectoryConfig.from_settings()
    assert group_search_base(config) == "dc=example,dc=org"
    ldap_login.PORTAL_LDAP_GROUP_BASE_DN = "ou=groups,dc=example,dc=org"
    assert group_search_base(DirectoryConfig.from_settings()) == "ou=groups,dc=example,dc=org"


# --- Local accounts, outages, configuration ----------------------------------------------


def test_a_local_account_still_logs_in_beside_the_directory(client, ldap_login, make_user):
    make_user("local-admin", groups=[APPROVERS])

    response = login(client, "local-admin", PASSWORD)

    assert response.status_code == 302
    assert client.session[BACKEND_SESSION_KEY] == MODEL_BACKEND
    assert login(client, "local-admin", PASSWORD, url="/admin/login/?next=/admin/")["Location"] == "/admin/"


def test_directory_down_is_a_failed_login_and_local_accounts_work(client, ldap_login, directory, make_user, caplog):
    make_user("local-user")
    directory.stop()

    with caplog.at_level(logging.WARNING):
        response = login(client, "carol")

    assert response.status_code == 200
    assert LOGIN_ERROR in response.content.decode()
    assert not User.objects.filter(username="carol").exists()
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("Directory log-in failed" in message and "Can't contact LDAP server" in message for message in warnings)
    assert login(client, "local-user", PASSWORD).status_code == 302
    assert logged_in_as(client) == "local-user"


def test_wrong_bind_password_is_a_failed_login_with_a_warning(client, ldap_login, caplog):
    ldap_login.PORTAL_LDAP_BIND_PASSWORD = "wrong-bind-password"

    with caplog.at_level(logging.WARNING):
        response = login(client, "carol")

    assert response.status_code == 200 and LOGIN_ERROR in response.content.decode()
    assert "Invalid credentials; check PORTAL_LDAP_BIND_DN and PORTAL_LDAP_BIND_PASSWORD" in caplog.text
    assert "wrong-bind-password" not in caplog.text


def test_an_unresponsive_directory_times_out_into_a_failed_login(client, ldap_login, directory, make_user):
    make_user("local-user")
    ldap_login.PORTAL_LDAP_TIMEOUT = 1
    ldap_login.PORTAL_LDAP_RECEIVE_TIMEOUT = 1
    directory.pause()  # accepts connections, answers nothing
    try:
        started = time.monotonic()
        response = login(client, "carol")
        elapsed = time.monotonic() - started
    finally:
        directory.resume()

    assert response.status_code == 200 and LOGIN_ERROR in response.content.decode()
    assert elapsed < 10
    assert login(client, "local-user", PASSWORD).status_code == 302


@pytest.mark.parametrize("mode", ["starttls", "ldaps"])
def test_login_over_tls_verified_with_the_ca_file(client, ldap_login, directory, mode):
    if mode == "starttls":
        ldap_login.PORTAL_LDAP_START_TLS = True
    else:
        ldap_login.PORTAL_LDAP_URI = directory.ldaps_uri
    ldap_login.PORTAL_LDAP_CA_FILE = str(directory.ca_file)

    assert login(client, "carol").status_code == 302
    assert roles(User.objects.get(username="carol")) == {APPROVERS}


@pytest.mark.parametrize("mode", ["starttls", "ldaps"])
def test_login_refuses_an_untrusted_directory_certificate(client, ldap_login, directory, mode, caplog):
    # The system's CAs do not know the test server's: no log-in, a warning, no page error.
    if mode == "starttls":
        ldap_login.PORTAL_LDAP_START_TLS = True
    else:
        ldap_login.PORTAL_LDAP_URI = directory.ldaps_uri

    with caplog.at_level(logging.WARNING):
        response = login(client, "carol")

    assert response.status_code == 200 and LOGIN_ERROR in response.content.decode()
    assert not User.objects.filter(username="carol").exists()
    assert "check that PORTAL_LDAP_CA_FILE holds the CA of the directory's certificate" in caplog.text


@pytest.mark.parametrize(
    "name, value, named",
    [
        ("PORTAL_LDAP_USER_BASE_DN", "", "PORTAL_LDAP_USER_BASE_DN"),
        ("PORTAL_LDAP_USER_BASE_DN", "people of example", "PORTAL_LDAP_USER_BASE_DN"),
        ("PORTAL_LDAP_APPROVERS_GROUP_DN", "the approvers", "PORTAL_LDAP_*_GROUP_DN"),
        ("PORTAL_LDAP_USER_FILTER", "uid=%(user)s", "PORTAL_LDAP_USER_FILTER"),
    ],
)
def test_unusable_settings_are_a_failed_login_with_a_warning(client, ldap_login, caplog, name, value, named):
    setattr(ldap_login, name, value)

    with caplog.at_level(logging.WARNING):
        response = login(client, "carol")

    assert response.status_code == 200 and LOGIN_ERROR in response.content.decode()
    assert named in caplog.text
    assert not User.objects.filter(username="carol").exists()


def test_without_a_uri_there_is_no_directory_login(client, ldap_login):
    assert authentication_backends(ldap_uri="") == [MODEL_BACKEND]
    assert authentication_backends(ldap_uri="ldap://ldap.example.org") == [MODEL_BACKEND, LDAP_BACKEND]
    ldap_login.PORTAL_LDAP_URI = ""  # even with the backend still listed

    assert login(client, "carol").status_code == 200
    assert not User.objects.filter(username="carol").exists()


# --- Audit ---------------------------------------------------------------------------------


def test_logins_and_failed_logins_are_audited_without_passwords(client, ldap_login, make_user):
    make_user("local-user")

    login(client, "carol")
    client.logout()
    login(client, "carol", "carols-wrong-password")
    login(client, "local-user", PASSWORD)

    events = list(AuditEvent.objects.filter(action__startswith="auth.login").order_by("id"))
    assert [(event.action, event.actor_name) for event in events] == [
        ("auth.login", "carol"),
        ("auth.login_failed", ""),
        ("auth.login", "local-user"),
    ]
    assert events[0].details == {"backend": LDAP_BACKEND}
    assert events[1].details == {"username": "carol"}
    assert events[2].details == {"backend": MODEL_BACKEND}
    everything = json.dumps([event.details for event in AuditEvent.objects.all()])
    for secret in (DIRECTORY_PASSWORDS["carol"], "carols-wrong-password", PASSWORD):
        assert secret not in everything


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_a_failed_local_login_is_audited_too(client, make_user, url):
    make_user("somebody")
    client.post(url, {"username": "somebody", "password": "some-password"})

    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.details == {"username": "somebody"}


def test_a_name_that_is_no_account_is_recorded_only_as_a_hash(client, db):
    # People type their password into the user name box; the audit log must not keep it.
    mistyped = "Tr0ub4dor&3-in-the-wrong-box"
    client.post("/login/", {"username": mistyped, "password": "x"})
    client.post("/login/", {"username": mistyped, "password": "y"})

    first, second = AuditEvent.objects.filter(action="auth.login_failed").order_by("id")
    assert mistyped not in json.dumps(first.details)
    assert first.details == second.details and set(first.details) == {"unknown_account_sha256"}


# --- Directory log-in owns only directory accounts -----------------------------------------
# Each test below fails on the code before DirectoryAccount: there, a directory entry became
# the local account of the same name, superuser or not, and rewrote its name and mail.

ATTACKER_PASSWORD = "chosen-by-the-attacker"
HOSTILE_MAIL = "mallory@attacker.example"


def directory_account(user):
    from portal.models import DirectoryAccount

    return DirectoryAccount.objects.filter(user=user).first()


@pytest.fixture
def hostile_admin_entry(directory):
    """What a directory administrator (or anyone who may create entries) adds: uid=admin, their password."""
    dn = person_dn("admin")
    directory.delete_entry(dn)
    directory.add_entry(
        dn,
        ["inetOrgPerson"],
        {
            "uid": "admin",
            "cn": "Mallory Hostile",
            "givenName": "Mallory",
            "sn": "Hostile",
            "mail": HOSTILE_MAIL,
            "userPassword": ATTACKER_PASSWORD,
        },
    )
    yield dn
    directory.delete_entry(dn)


@pytest.fixture
def local_admin(make_user):
    """The bootstrap superuser, a local account with a local password."""
    return make_user("admin", given_name="Ada", surname="Admin", superuser=True)


def test_the_hostile_entry_binds_in_the_directory(hostile_admin_entry, directory):
    # The attack is real: the directory accepts the attacker's password for uid=admin.
    from ldap3 import Connection, Server

    connection = Connection(Server(directory.uri), hostile_admin_entry, ATTACKER_PASSWORD)
    assert connection.bind()
    connection.unbind()


@pytest.mark.parametrize("url", ["/login/", "/admin/login/?next=/admin/"])
def test_a_hostile_uid_admin_entry_cannot_log_in_as_the_local_superuser(
    client, ldap_login, hostile_admin_entry, local_admin, url, caplog
):
    before = User.objects.get(pk=local_admin.pk)
    employee_before = Employee.objects.get(user=local_admin)

    with caplog.at_level(logging.WARNING):
        response = login(client, "admin", ATTACKER_PASSWORD, url=url)

    assert response.status_code == 200
    assert (ADMIN_LOGIN_ERROR if url.startswith("/admin/") else LOGIN_ERROR) in response.content.decode()
    assert logged_in_as(client) == ""
    assert client.get("/admin/").status_code == 302  # to the admin's log-in page
    after = User.objects.get(pk=local_admin.pk)
    assert (after.first_name, after.last_name, after.email, after.password) == (
        before.first_name, before.last_name, before.email, before.password,
    )
    assert after.is_superuser and after.check_password(PASSWORD) and not after.check_password(ATTACKER_PASSWORD)
    employee = Employee.objects.get(user=local_admin)
    assert (employee.given_name, employee.surname, employee.mail, employee.directory_dn) == (
        employee_before.given_name, employee_before.surname, employee_before.mail, employee_before.directory_dn,
    )
    assert HOSTILE_MAIL not in json.dumps(list(Employee.objects.values()), default=str)
    assert directory_account(local_admin) is None
    assert "'admin' is a local account" in caplog.text
    # A failed log-in in the audit log, as for a wrong password.
    event = AuditEvent.objects.filter(action="auth.login_failed").order_by("-id").first()
    assert event.details == {"username": "admin"}
    assert not AuditEvent.objects.filter(action="auth.login").exists()
    assert ATTACKER_PASSWORD not in json.dumps([e.details for e in AuditEvent.objects.all()])

    # The local superuser still logs in with the local password.
    response = login(client, "admin", PASSWORD, url="/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.session[BACKEND_SESSION_KEY] == MODEL_BACKEND


def test_a_hostile_entry_of_any_letter_case_is_refused(client, ldap_login, hostile_admin_entry, local_admin):
    assert login(client, "ADMIN", ATTACKER_PASSWORD).status_code == 200
    assert logged_in_as(client) == ""
    assert User.objects.filter(username__iexact="admin").count() == 1


def test_populating_from_the_directory_never_changes_a_local_account(ldap_login, hostile_admin_entry, local_admin):
    # django-auth-ldap's populate_user() looks the entry up without a log-in: the check after the
    # search (get_or_build_user) refuses too, before any attribute is copied.
    from portal.ldap_auth import PortalLDAPBackend

    assert PortalLDAPBackend().populate_user("admin") is None

    admin = User.objects.get(pk=local_admin.pk)
    assert (admin.first_name, admin.email) == (local_admin.first_name, local_admin.email)
    assert admin.check_password(PASSWORD)


def test_a_local_staff_account_is_never_reached_with_a_directory_password(client, ldap_login, make_user, caplog):
    local = make_user("carol", given_name="Caroline", surname="Local", groups=[AUDITORS])

    with caplog.at_level(logging.WARNING):
        response = login(client, "carol")  # carol's directory password: an approver in the directory

    assert response.status_code == 200 and LOGIN_ERROR in response.content.decode()
    carol = User.objects.get(pk=local.pk)
    assert (carol.first_name, carol.email) == (local.first_name, local.email)
    assert roles(carol) == {AUDITORS}  # the directory's approver group did not touch it
    assert Employee.objects.get(user=carol).surname == "Local"
    assert "'carol' is a local account" in caplog.text
    assert login(client, "carol", PASSWORD).status_code == 302  # its local password still works


def test_a_mistyped_local_password_never_goes_to_the_directory(client, ldap_login, local_admin, directory, caplog):
    directory.stop()  # a directory round trip would log "Can't contact LDAP server"

    with caplog.at_level(logging.WARNING):
        response = login(client, "admin", "adminn-password-with-a-typo")

    assert response.status_code == 200
    assert "Can't contact LDAP server" not in caplog.text
    assert "'admin' is a local account" in caplog.text


def test_a_new_directory_user_becomes_a_directory_account(client, ldap_login):
    from django.contrib.auth import authenticate

    from portal.models import DirectoryAccount

    assert login(client, "bob").status_code == 302

    bob = User.objects.get(username="bob")
    account = directory_account(bob)
    assert account.origin == DirectoryAccount.Origin.LOGIN and account.entry_dn == person_dn("bob")
    assert not bob.has_usable_password() and not bob.is_superuser
    # Only the directory backend logs it in; the local one knows no password for it.
    from django.contrib.auth.backends import ModelBackend

    assert ModelBackend().authenticate(None, username="bob", password=DIRECTORY_PASSWORDS["bob"]) is None
    assert authenticate(None, username="bob", password=DIRECTORY_PASSWORDS["bob"]).backend == LDAP_BACKEND
    client.logout()
    assert login(client, "bob").status_code == 302  # the next log-in finds the directory account
    assert DirectoryAccount.objects.filter(user=bob).count() == 1


@pytest.mark.parametrize("username", ["admin", "Admin", "root"])
def test_a_reserved_name_without_a_local_account_is_refused(client, ldap_login, directory, username, caplog):
    uid = username.lower()
    directory.delete_entry(person_dn(uid))
    directory.add_entry(person_dn(uid), ["inetOrgPerson"], {"uid": uid, "cn": "x", "sn": "x", "userPassword": ATTACKER_PASSWORD})
    try:
        with caplog.at_level(logging.WARNING):
            response = login(client, username, ATTACKER_PASSWORD)
    finally:
        directory.delete_entry(person_dn(uid))

    assert response.status_code == 200 and LOGIN_ERROR in response.content.decode()
    assert not User.objects.filter(username__iexact=uid).exists()  # a later bootstrap superuser gets the name
    assert "is reserved (PORTAL_LDAP_RESERVED_USERNAMES)" in caplog.text


def test_reserved_names_are_configurable(client, ldap_login):
    ldap_login.PORTAL_LDAP_RESERVED_USERNAMES = ["Bob"]

    assert login(client, "bob").status_code == 200
    assert not User.objects.filter(username="bob").exists()
    assert login(client, "carol").status_code == 302


def test_an_explicitly_linked_local_account_logs_in_with_the_directory_password(client, ldap_login, make_user):
    local = make_user("carol", given_name="Caroline", surname="Local")
    out = io.StringIO()

    call_command("link_directory_account", "carol", "--dn", "uid=carol, ou=people, dc=example, dc=org", stdout=out)

    assert f"Linked carol to {person_dn('carol')}" in out.getvalue()
    carol = User.objects.get(pk=local.pk)
    assert not carol.has_usable_password()  # the directory keeps the password now
    event = AuditEvent.objects.get(action="auth.directory_linked")
    assert event.details["username"] == "carol" and event.details["entry_dn"] == person_dn("carol")
    assert event.object_id == str(carol.pk)

    assert login(client, "carol", PASSWORD).status_code == 200  # the old local password
    response = login(client, "carol")
    assert response.status_code == 302 and client.session[BACKEND_SESSION_KEY] == LDAP_BACKEND
    carol = User.objects.get(pk=local.pk)
    assert (carol.first_name, carol.last_name, carol.email) == ("Carol", "Clark", "carol@example.org")
    assert roles(carol) == {APPROVERS}


def test_a_linked_account_logs_in_only_from_its_entry(client, ldap_login, make_user, caplog):
    make_user("carol")
    call_command("link_directory_account", "carol", "--dn", person_dn("alice"), stdout=io.StringIO())

    with caplog.at_level(logging.WARNING):
        response = login(client, "carol")  # uid=carol binds, but the account is alice's entry's

    assert response.status_code == 200
    assert f"is linked to {person_dn('alice')}, not to {person_dn('carol')}" in caplog.text


def test_a_reserved_name_logs_in_once_an_administrator_linked_it(client, ldap_login, make_user, directory):
    make_user("root", given_name="Rita", surname="Root")
    directory.delete_entry(person_dn("root"))
    directory.add_entry(
        person_dn("root"), ["inetOrgPerson"],
        {"uid": "root", "cn": "Rita Root", "sn": "Root", "mail": "root@example.org", "userPassword": "rita-directory-password"},
    )
    try:
        assert login(client, "root", "rita-directory-password").status_code == 200
        call_command("link_directory_account", "root", "--dn", person_dn("root"), stdout=io.StringIO())
        assert login(client, "root", "rita-directory-password").status_code == 302
    finally:
        directory.delete_entry(person_dn("root"))


def test_the_link_command_refuses_a_superuser(ldap_login, local_admin):
    # call_command, not ManagementUtility: run_from_argv closes every database connection when
    # it ends, which on PostgreSQL takes the test's transaction with it. manage.py prints a
    # CommandError as this one line ("CommandError: <message>") and exits 1.
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError) as refused:
        call_command("link_directory_account", "admin", "--dn", person_dn("admin"))

    assert str(refused.value) == (
        "admin is a superuser; superusers stay local accounts and never log in with a directory password"
    )
    assert directory_account(local_admin) is None
    assert User.objects.get(pk=local_admin.pk).check_password(PASSWORD)
    assert not AuditEvent.objects.filter(action="auth.directory_linked").exists()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["nobody", "--dn", person_dn("carol")], "There is no user 'nobody'."),
        (["carol", "--dn", "carol at example"], "is not a distinguished name"),
        (["carol", "--dn", "uid=carol,ou=elsewhere,dc=example,dc=org"], "is not under PORTAL_LDAP_USER_BASE_DN"),
    ],
)
def test_the_link_command_refuses_what_cannot_log_in(ldap_login, make_user, arguments, message):
    from django.core.management import CommandError

    make_user("carol")
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("link_directory_account", *arguments)
    assert directory_account(User.objects.get(username="carol")) is None


def test_an_entry_links_to_one_account_only(ldap_login, make_user):
    from django.core.management import CommandError

    make_user("carol")
    make_user("caroline")
    call_command("link_directory_account", "carol", "--dn", person_dn("carol"), stdout=io.StringIO())

    with pytest.raises(CommandError, match="already belongs to the account carol"):
        call_command("link_directory_account", "caroline", "--dn", person_dn("carol"))


def test_a_directory_account_made_superuser_no_longer_logs_in_from_the_directory(client, ldap_login, caplog):
    assert login(client, "bob").status_code == 302
    User.objects.filter(username="bob").update(is_superuser=True, is_staff=True)

    assert logged_in_as(client) == ""  # its directory session ended

    with caplog.at_level(logging.WARNING):
        assert login(client, "bob").status_code == 200
    assert "'bob' is a superuser" in caplog.text


def test_a_directory_account_whose_link_was_removed_is_local(client, ldap_login):
    from portal.models import DirectoryAccount

    login(client, "bob")
    DirectoryAccount.objects.filter(user__username="bob").delete()

    assert logged_in_as(client) == ""
    assert login(client, "bob").status_code == 200


@pytest.mark.parametrize(
    "name, value",
    [
        ("AUTH_LDAP_USER_FLAGS_BY_GROUP", {"is_superuser": group_dn("approvers")}),
        ("AUTH_LDAP_USER_ATTR_MAP", {"first_name": "givenName", "username": "mail"}),
    ],
)
def test_explicit_settings_cannot_make_the_directory_decide_superusers(client, ldap_login, name, value, caplog):
    setattr(ldap_login, name, value)

    with caplog.at_level(logging.WARNING):
        response = login(client, "carol")

    assert response.status_code == 200
    assert not User.objects.filter(is_superuser=True).exists()
    assert f"{name} may not set" in caplog.text


def test_the_migration_keeps_the_directory_users_earlier_log_ins_created(db, make_user):
    import importlib

    from django.apps import apps

    from enrollment.services.employees import employee_upsert

    migration = importlib.import_module("portal.migrations.0002_directory_accounts")
    # What django-auth-ldap made before: an unusable password, the entry's DN on the employee.
    bob = User.objects.create_user("bob")
    employee_upsert(user=bob, mail="bob@example.org", directory_dn="uid=bob, ou=people, dc=example, dc=org")
    local = make_user("carol")  # a local password: stays local even with a DN on record
    Employee.objects.filter(user=local).update(directory_dn=person_dn("carol"))
    admin = make_user("admin", superuser=True)
    admin.set_unusable_password()
    admin.save()
    Employee.objects.filter(user=admin).update(directory_dn=person_dn("admin"))

    migration.adopt_directory_users(apps, None)

    assert directory_account(bob).entry_dn == person_dn("bob")
    assert directory_account(local) is None and directory_account(admin) is None
