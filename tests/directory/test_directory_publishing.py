"""Issued certificates reach the employee's entry in a real OpenLDAP, and only ours move."""

from __future__ import annotations

import base64
import subprocess

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from portal_testing import require_tool
from slapd_server import PEOPLE_DN, find_program, person_dn

from audit.models import AuditEvent
from enrollment.directory.batch import publication_attempt
from enrollment.directory.services import publication_schedule, publication_schedule_removal
from enrollment.models import DirectoryPublication
from enrollment.services.employees import employee_upsert

ALICE = person_dn("alice")
BINARY = "userCertificate;binary"


def der(certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def actions_for(certificate) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="enrollment.certificate", object_id=str(certificate.pk), action__startswith="directory.")
        .order_by("id")
        .values_list("action", flat=True)
    )


def ldapsearch_certificates(directory, mail: str) -> list[bytes]:
    """What a mail client sees: an anonymous ldapsearch for the address, userCertificate values."""
    ldapsearch = find_program("ldapsearch") or require_tool("ldapsearch")
    result = subprocess.run(
        [ldapsearch, "-x", "-LLL", "-o", "ldif-wrap=no", "-H", directory.uri, "-b", PEOPLE_DN,
         f"(mail={mail})", "userCertificate"],
        capture_output=True, text=True, timeout=30, check=True,
    )
    prefix = "userCertificate;binary:: "
    return [base64.b64decode(line[len(prefix):]) for line in result.stdout.splitlines() if line.startswith(prefix)]


def publish(certificate) -> DirectoryPublication:
    publication = publication_schedule(certificate=certificate)
    result = publication_attempt(publication=publication)
    assert result.ok, result.error
    return result.publication


def test_approval_publishes_the_certificate_to_the_employees_entry(ldap_settings, directory, issue_certificate, alice):
    certificate = issue_certificate(alice)

    publication = DirectoryPublication.objects.get(certificate=certificate)
    assert publication.state == "published" and publication.attempts == 1 and not publication.last_error
    assert publication.entry_dn == ALICE and publication.next_attempt_at is None
    assert directory.values(ALICE, BINARY) == [bytes(certificate.der)]
    assert ldapsearch_certificates(directory, "alice@example.org") == [bytes(certificate.der)]
    assert directory.values(person_dn("bob"), BINARY) == []
    assert actions_for(certificate) == ["directory.published"]


def test_foreign_values_survive_publishing_and_unpublishing(
    ldap_settings, directory, pki, issued, foreign_certificate, make_foreign_certificate
):
    # One self-signed, one that only claims our issuing CA's name: neither is the portal's.
    impostor = make_foreign_certificate("Alice Archer", issuer_name=pki["material"].issuing.subject)
    foreign = [der(foreign_certificate), der(impostor)]
    directory.add_values(ALICE, BINARY, foreign)

    publish(issued)
    assert sorted(directory.values(ALICE, BINARY)) == sorted([*foreign, bytes(issued.der)])

    publication = publication_schedule_removal(certificate=issued)
    result = publication_attempt(publication=publication)
    assert result.ok, result.error
    assert sorted(directory.values(ALICE, BINARY)) == sorted(foreign)


def test_publishing_twice_changes_nothing(ldap_settings, directory, issued):
    publish(issued)
    csn = directory.operational(ALICE, "entryCSN")

    publication = publish(issued)

    assert directory.values(ALICE, BINARY) == [bytes(issued.der)]
    assert directory.operational(ALICE, "entryCSN") == csn  # no write at all
    assert publication.state == "published" and publication.attempts == 2
    event = AuditEvent.objects.filter(action="directory.published").order_by("-id").first()
    assert event.details["changed"] is False


def test_unpublish_removes_only_this_certificate(ldap_settings, directory, issued, foreign_certificate):
    publish(issued)
    directory.add_values(ALICE, BINARY, [der(foreign_certificate)])

    publication = publication_schedule_removal(certificate=issued)
    assert publication.state == "remove_pending"
    result = publication_attempt(publication=publication)

    assert result.ok, result.error
    assert result.publication.state == "removed" and result.publication.next_attempt_at is None
    assert directory.values(ALICE, BINARY) == [der(foreign_certificate)]
    assert actions_for(issued) == ["directory.published", "directory.unpublished"]
    # Removing again is a no-op: the row is done.
    assert publication_attempt(publication=result.publication).skipped


def test_a_newer_certificate_replaces_the_portals_older_one(ldap_settings, directory, issue_certificate, alice, foreign_certificate):
    directory.add_values(ALICE, BINARY, [der(foreign_certificate)])
    first = issue_certificate(alice)
    second = issue_certificate(alice)

    assert sorted(directory.values(ALICE, BINARY)) == sorted([der(foreign_certificate), bytes(second.der)])
    assert DirectoryPublication.objects.get(certificate=first).state == "superseded"
    assert DirectoryPublication.objects.get(certificate=second).state == "published"
    event = AuditEvent.objects.filter(action="directory.published", object_id=str(second.pk)).get()
    assert event.details["replaced"] == [first.serial]

    # A late retry of the older one (it failed earlier, say) does not push out the newer.
    DirectoryPublication.objects.filter(certificate=first).update(state="failed")
    result = publication_attempt(publication=DirectoryPublication.objects.get(certificate=first))
    assert result.ok and result.publication.state == "superseded"
    assert sorted(directory.values(ALICE, BINARY)) == sorted([der(foreign_certificate), bytes(second.der)])


def test_revoked_certificate_is_never_published(ldap_settings, directory, issued):
    from enrollment.models import Certificate

    publication = publication_schedule(certificate=issued)
    Certificate.objects.filter(pk=issued.pk).update(status="revoked")

    result = publication_attempt(publication=publication)

    assert result.ok and result.operation == "unpublish" and result.publication.state == "removed"
    assert directory.values(ALICE, BINARY) == []


def test_user_smime_certificate_holds_certificate_and_chain(ldap_settings, directory, issued, pki, foreign_certificate):
    ldap_settings.PORTAL_LDAP_PUBLISH_SMIME_CAPABLE = True
    foreign = pkcs7.serialize_certificates([foreign_certificate], Encoding.DER)
    directory.add_values(ALICE, "userSMIMECertificate", [foreign])

    publish(issued)
    publish(issued)

    values = directory.values(ALICE, "userSMIMECertificate")
    assert len(values) == 2 and foreign in values
    ours = next(value for value in values if value != foreign)
    # A SET OF in DER: the order is the encoding's, not ours.
    assert sorted(c.subject.rfc4514_string() for c in pkcs7.load_der_pkcs7_certificates(ours)) == sorted(
        c.subject.rfc4514_string() for c in (issued.x509, pki["material"].issuing, pki["material"].root)
    )
    result = publication_attempt(publication=publication_schedule_removal(certificate=issued))
    assert result.ok, result.error
    assert directory.values(ALICE, "userSMIMECertificate") == [foreign]
    assert directory.values(ALICE, BINARY) == []


def test_stored_directory_dn_wins_over_the_search(ldap_settings, directory, issued, alice):
    ldap_settings.PORTAL_LDAP_MAIL_FILTER = "(description=%(mail)s)"  # would find nothing
    employee_upsert(
        user=alice, mail="alice@example.org", given_name="Alice", surname="Archer", directory_dn=ALICE
    )

    assert publish(issued).entry_dn == ALICE
    assert directory.values(ALICE, BINARY) == [bytes(issued.der)]


def test_missing_entry_is_a_readable_failure(ldap_settings, directory, issued):
    ldap_settings.PORTAL_LDAP_MAIL_FILTER = "(&(mail=%(mail)s)(uid=nobody))"

    result = publication_attempt(publication=publication_schedule(certificate=issued))

    assert not result.ok and not result.unavailable
    assert result.publication.state == "failed" and result.publication.attempts == 1
    assert "No directory entry matches (&(mail=alice@example.org)(uid=nobody))" in result.publication.last_error


def test_filter_values_are_escaped(ldap_settings, directory):
    from enrollment.directory.client import DirectoryClient, DirectoryError, EntryLocator
    from enrollment.directory.config import DirectoryConfig

    with DirectoryClient(DirectoryConfig.from_settings()) as client:
        assert client.find_entry(EntryLocator(mail="alice@example.org"), attributes=["mail"]).dn == ALICE
        with pytest.raises(DirectoryError, match=r"No directory entry matches \(mail=\\2a\)"):
            client.find_entry(EntryLocator(mail="*"), attributes=["mail"])
