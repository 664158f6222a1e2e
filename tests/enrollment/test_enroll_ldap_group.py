"""`manage.py enroll --ldap-group DN` against a real OpenLDAP slapd (tests/slapd_server.py).

The group's members are read through the configured directory (the publisher's account, as the
people search does): people become employees named by their uid, with their entry's DN; nested
groups are followed; members that cannot be enrolled (no mail, no such entry) are failed rows
named by their DN; a second run creates nothing; a group that cannot be read is exit status 2.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from portal_testing import require_tool
from slapd_server import GROUPS_DN, PEOPLE_DN, PUBLISHER_DN, PUBLISHER_PASSWORD, SlapdServer, find_program, person_dn

from enrollment.models import CertificateRequest, Employee, EnrollmentBatch

STAFF_DN = f"cn=staff,{GROUPS_DN}"
NESTED_DN = f"cn=staff-nested,{GROUPS_DN}"
GONE_DN = f"uid=gone,{PEOPLE_DN}"


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    """A slapd of this module's own, with a staff group: alice, bob, dave (no mail), a member that
    does not exist, and a nested group holding carol and the staff group again (a cycle)."""
    slapd_program = find_program("slapd") or require_tool("slapd")
    slapadd = find_program("slapadd") or require_tool("slapadd")
    server = SlapdServer(tmp_path_factory.mktemp("slapd-enroll"), slapd=slapd_program, slapadd=slapadd)
    server.start()
    server.add_entry(NESTED_DN, ["groupOfNames"], {"cn": "staff-nested", "member": [person_dn("carol"), STAFF_DN]})
    members = [person_dn("alice"), person_dn("bob"), person_dn("dave"), GONE_DN, NESTED_DN]
    server.add_entry(STAFF_DN, ["groupOfNames"], {"cn": "staff", "member": members})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def directory_settings(settings, slapd):
    slapd.start()
    settings.PORTAL_MAIL_DOMAINS = ["example.org"]
    settings.PORTAL_ENROLLMENT_AUTO_APPROVE = False
    settings.PORTAL_LDAP_URI = slapd.uri
    settings.PORTAL_LDAP_PRESET = "openldap"
    settings.PORTAL_LDAP_BIND_DN = PUBLISHER_DN
    settings.PORTAL_LDAP_BIND_PASSWORD = PUBLISHER_PASSWORD
    settings.PORTAL_LDAP_USER_BASE_DN = PEOPLE_DN
    settings.PORTAL_LDAP_START_TLS = False
    settings.PORTAL_LDAP_CA_FILE = ""
    settings.PORTAL_LDAP_TIMEOUT = 2
    settings.PORTAL_LDAP_RECEIVE_TIMEOUT = 5
    yield settings
    slapd.start()


def enroll_group(group_dn: str, *args: str, exit_status: int = 0) -> tuple[str, str]:
    """The command's output; `exit_status` 1: rows failed and nothing new was written (the demo group has
    members that can never be enrolled, so that is every run after the first)."""
    out, err = io.StringIO(), io.StringIO()
    command = ["enroll", "--ldap-group", group_dn, "--actor", "pkiadmin", "--progress", "off", *args]
    if exit_status:
        with pytest.raises(CommandError) as caught:
            call_command(*command, stdout=out, stderr=err)
        assert caught.value.returncode == exit_status, caught.value
        err.write(str(caught.value))
    else:
        call_command(*command, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def enroll_group_refused(group_dn: str) -> CommandError:
    with pytest.raises(CommandError) as caught:
        call_command(
            "enroll",
            "--ldap-group",
            group_dn,
            "--actor",
            "pkiadmin",
            "--progress",
            "off",
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    return caught.value


def test_the_members_of_a_group_are_enrolled_through_the_directory(directory_settings, pki_admin):
    out, err = enroll_group(STAFF_DN, "--key-type", "ec-p256")

    assert "3 employees enrolled" in out and "2 failed" in out, out + err
    employees = {e.user.username: e for e in Employee.objects.exclude(user=pki_admin).select_related("user")}
    assert set(employees) == {"alice", "bob", "carol"}  # carol through the nested group, once
    alice = employees["alice"]
    assert (alice.mail, alice.given_name, alice.surname, alice.directory_dn) == (
        "alice@example.org",
        "Alice",
        "Archer",
        person_dn("alice"),
    )
    batch = EnrollmentBatch.objects.get()
    assert (batch.source_kind, batch.source, batch.created, batch.failed) == ("directory_group", STAFF_DN, 3, 2)
    failures = {item["where"]: (item["field"], item["reason"]) for item in batch.failures}
    assert set(failures) == {person_dn("dave"), GONE_DN}
    assert failures[person_dn("dave")][0] == "mail"
    assert failures[GONE_DN] == ("row", "There is no such directory entry.")
    assert f"{GONE_DN}: There is no such directory entry." in err
    requests = CertificateRequest.objects.filter(batch=batch)
    assert set(requests.values_list("key_type", "state")) == {("ec-p256", "pending")}


def test_a_second_run_of_the_group_creates_nothing(directory_settings, pki_admin):
    enroll_group(STAFF_DN)
    before = (Employee.objects.count(), CertificateRequest.objects.count())

    out, err = enroll_group(STAFF_DN, exit_status=1)

    assert (Employee.objects.count(), CertificateRequest.objects.count()) == before
    assert "0 employees enrolled" in out and "3 skipped as already enrolled" in out
    assert "Nothing new to enroll (3 already enrolled), 2 rows failed" in err


def test_a_new_member_is_enrolled_on_the_next_run(directory_settings, slapd, pki_admin):
    enroll_group(STAFF_DN)
    slapd.add_entry(
        person_dn("erin"),
        ["inetOrgPerson"],
        {"uid": "erin", "cn": "Erin Evans", "givenName": "Erin", "sn": "Evans", "mail": "erin@example.org"},
    )
    slapd.add_values(STAFF_DN, "member", [person_dn("erin").encode()])
    try:
        out, _ = enroll_group(STAFF_DN)
    finally:
        from ldap3 import MODIFY_DELETE

        connection = slapd.admin_connection()
        connection.modify(STAFF_DN, {"member": [(MODIFY_DELETE, [person_dn("erin")])]})
        connection.unbind()
        slapd.delete_entry(person_dn("erin"))

    assert "1 employees enrolled" in out and "3 skipped as already enrolled" in out
    assert Employee.objects.get(user__username="erin").directory_dn == person_dn("erin")


@pytest.mark.parametrize(
    ("group_dn", "expected"),
    [
        (f"cn=absent,{GROUPS_DN}", "There is no directory entry cn=absent"),
        (person_dn("alice"), "is not a group"),
        ("not a DN at all", "is not a distinguished name"),
    ],
    ids=["absent", "a-person", "malformed"],
)
def test_a_group_that_cannot_be_read_is_one_line_and_exit_2(directory_settings, pki_admin, group_dn, expected):
    error = enroll_group_refused(group_dn)

    assert error.returncode == 2 and expected in str(error) and "\n" not in str(error), str(error)
    assert not EnrollmentBatch.objects.exists()


def test_the_directory_down_is_one_readable_line_and_exit_2(directory_settings, slapd, pki_admin):
    slapd.stop()
    try:
        error = enroll_group_refused(STAFF_DN)
    finally:
        slapd.start()

    assert error.returncode == 2 and slapd.uri in str(error) and "\n" not in str(error)
    assert PUBLISHER_PASSWORD not in str(error)
    assert not CertificateRequest.objects.exists()
