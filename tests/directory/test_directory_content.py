"""What senders find in the directory, read back with `ldapsearch` and used by real engines.

Each test reads the employee's entry as a mail client would (ldap-utils' ldapsearch,
anonymously), encrypts a message to what it found with OpenSSL (`openssl cms -encrypt`,
as Mutt does) and, for RSA, NSS (`cmsutil`, the engine of Thunderbird and Evolution;
Debian's NSS 3.87 cannot encrypt to EC recipients), and decrypts it with the key the
portal escrowed, recovered with the agent key. The rules (enrollment/directory/selectors.py):
only certificates senders can encrypt to go there (never the signing-only one of a split
pair); when the newest is revoked or expires, the older valid one is published again.
"""

from __future__ import annotations

import base64
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from django.core.management import call_command
from django.utils import timezone
from portal_testing import require_tool
from slapd_server import PEOPLE_DN, find_program, person_dn

from enrollment.directory.services import employee_directory_resync
from enrollment.models import Certificate, DirectoryPublication
from enrollment.revocation.services import certificate_revoke
from enrollment.services.employees import employee_upsert

ALICE = person_dn("alice")
MESSAGE = b"Content-Type: text/plain\r\n\r\nThe quarterly figures, for your eyes only.\r\n"
SMIME = "userSMIMECertificate"


def ldapsearch(directory, *, attribute: str, base: str = PEOPLE_DN, mail: str | None = "alice@example.org") -> list[bytes]:
    """The values of `attribute` an anonymous ldapsearch returns (for the address, or the entry `base`)."""
    tool = find_program("ldapsearch") or require_tool("ldapsearch")
    args = ["-b", base, f"(mail={mail})"] if mail else ["-b", base, "-s", "base", "(objectClass=*)"]
    result = subprocess.run(
        [tool, "-x", "-LLL", "-o", "ldif-wrap=no", "-H", directory.uri, *args, attribute],
        capture_output=True, text=True, timeout=30, check=True,
    )
    values = []
    for line in result.stdout.splitlines():
        name, _, value = line.partition(":: ")
        if value and name.split(";")[0].lower() == attribute.split(";")[0].lower():
            values.append(base64.b64decode(value))
    return values


def found_certificates(directory, **kwargs) -> list[bytes]:
    return ldapsearch(directory, attribute="userCertificate", **kwargs)


def openssl(*args, input: bytes | None = None) -> bytes:
    result = subprocess.run([require_tool("openssl"), *map(str, args)], input=input, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def escrowed_key(certificate: Certificate, pki, tmp_path: Path) -> Path:
    """The escrowed private key, recovered as an agent would: `openssl cms -decrypt` with the agent key."""
    material = pki["material"]
    envelope = tmp_path / f"escrow-{certificate.serial}.der"
    envelope.write_bytes(bytes(certificate.escrow.envelope_der))
    agent_cert = tmp_path / "agent.pem"
    agent_cert.write_bytes(material.kra.public_bytes(serialization.Encoding.PEM))
    agent_key = tmp_path / "agent.key"
    agent_key.write_bytes(
        material.kra_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    der = openssl("cms", "-decrypt", "-binary", "-inform", "DER", "-in", envelope, "-recip", agent_cert, "-inkey", agent_key)
    key = tmp_path / f"key-{certificate.serial}.pem"
    key.write_bytes(openssl("pkey", "-inform", "DER", input=der))
    return key


def pem_file(der: bytes, path: Path) -> Path:
    path.write_bytes(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM))
    return path


def decrypts_with(envelope: Path, certificate: Certificate, key: Path, tmp_path: Path) -> bytes:
    recipient = pem_file(bytes(certificate.der), tmp_path / f"recip-{certificate.serial}.pem")
    return openssl("cms", "-decrypt", "-binary", "-inform", "DER", "-in", envelope, "-recip", recipient, "-inkey", key)


def openssl_encrypt_to(values: list[bytes], tmp_path: Path) -> Path:
    """What a sender with OpenSSL does: encrypt to the first certificate the directory gave."""
    recipient = pem_file(values[0], tmp_path / "found.pem")
    message = tmp_path / "message.txt"
    message.write_bytes(MESSAGE)
    envelope = tmp_path / "openssl.p7m"
    openssl("cms", "-encrypt", "-binary", "-aes-256-cbc", "-in", message, "-outform", "DER", "-out", envelope, recipient)
    return envelope


def nss_encrypt_to(values: list[bytes], pki, tmp_path: Path) -> Path:
    """What Thunderbird's engine does: the found certificate in an NSS database, the root trusted, cmsutil -E."""
    certutil, cmsutil = require_tool("certutil"), require_tool("cmsutil")
    db = tmp_path / "nssdb"
    db.mkdir()
    nss = f"sql:{db}"

    def run(*args, input: bytes | None = None) -> None:
        result = subprocess.run([*map(str, args)], input=input, capture_output=True, timeout=60)
        assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")

    run(certutil, "-N", "-d", nss, "--empty-password")
    material = pki["material"]
    for nickname, certificate, trust in (("root", material.root, "C,C,C"), ("issuing", material.issuing, ",,")):
        der = tmp_path / f"{nickname}.der"
        der.write_bytes(certificate.public_bytes(serialization.Encoding.DER))
        run(certutil, "-A", "-d", nss, "-n", nickname, "-t", trust, "-i", der)
    found = tmp_path / "found.der"
    found.write_bytes(values[0])
    run(certutil, "-A", "-d", nss, "-n", "alice", "-t", ",,", "-i", found)
    message = tmp_path / "message.txt"
    message.write_bytes(MESSAGE)
    envelope = tmp_path / "nss.p7m"
    run(cmsutil, "-E", "-d", nss, "-r", "alice", "-i", message, "-o", envelope)
    return envelope


def revoke(certificate, approver, capture) -> None:
    with capture(execute=True):
        certificate_revoke(serial=certificate.serial, actor=approver, reason="superseded")


# --- Key separation: the signing-only certificate never reaches senders ------------------


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-3072"])
def test_key_separation_publishes_only_the_encryption_certificate(
    key_type, ldap_settings, directory, issue_certificate, alice, settings, pki, tmp_path
):
    settings.PORTAL_KEY_SEPARATION = True
    encryption = issue_certificate(alice, key_type=key_type)
    signing = encryption.request.certificates.get(usage="signing")

    found = found_certificates(directory)
    assert found == [bytes(encryption.der)]
    assert bytes(signing.der) not in found

    key = escrowed_key(encryption, pki, tmp_path)
    assert decrypts_with(openssl_encrypt_to(found, tmp_path), encryption, key, tmp_path) == MESSAGE
    if key_type.startswith("rsa"):
        assert decrypts_with(nss_encrypt_to(found, pki, tmp_path), encryption, key, tmp_path) == MESSAGE


def test_revoking_the_encryption_certificate_never_leaves_the_signing_one(
    ldap_settings, directory, issue_certificate, alice, settings, approver, django_capture_on_commit_callbacks
):
    settings.PORTAL_KEY_SEPARATION = True
    encryption = issue_certificate(alice)
    signing = encryption.request.certificates.get(usage="signing")
    # A directory written by an earlier release: the signing certificate is there too.
    if bytes(signing.der) not in directory.values(ALICE, "userCertificate;binary"):
        directory.add_values(ALICE, "userCertificate;binary", [bytes(signing.der)])

    revoke(encryption, approver, django_capture_on_commit_callbacks)

    assert Certificate.objects.get(pk=signing.pk).status == "valid"
    assert found_certificates(directory) == []


# --- The older valid certificate comes back ------------------------------------------------


def test_revoking_the_newest_publishes_the_older_valid_one_again(
    ldap_settings, directory, issue_certificate, alice, approver, pki, tmp_path, django_capture_on_commit_callbacks
):
    older = issue_certificate(alice, key_type="rsa-3072")
    newer = issue_certificate(alice, key_type="rsa-3072")
    assert found_certificates(directory) == [bytes(newer.der)]
    assert DirectoryPublication.objects.get(certificate=older).state == "superseded"

    revoke(newer, approver, django_capture_on_commit_callbacks)

    found = found_certificates(directory)
    assert found == [bytes(older.der)]
    assert DirectoryPublication.objects.get(certificate=older).state == "published"
    assert DirectoryPublication.objects.get(certificate=newer).state == "removed"
    key = escrowed_key(older, pki, tmp_path)
    assert decrypts_with(openssl_encrypt_to(found, tmp_path), older, key, tmp_path) == MESSAGE
    assert decrypts_with(nss_encrypt_to(found, pki, tmp_path), older, key, tmp_path) == MESSAGE

    # Revoking the older one too leaves nothing: no certificate to encrypt to.
    revoke(older, approver, django_capture_on_commit_callbacks)
    assert found_certificates(directory) == []


def test_expiry_of_the_newest_publishes_the_older_valid_one_again(
    ldap_settings, directory, issue_certificate, alice, pki, tmp_path, django_capture_on_commit_callbacks
):
    older = issue_certificate(alice)
    newer = issue_certificate(alice)
    Certificate.objects.filter(pk=newer.pk).update(not_after=timezone.now() - timedelta(seconds=1))

    with django_capture_on_commit_callbacks(execute=True):
        call_command("expire_certificates")

    found = found_certificates(directory)
    assert found == [bytes(older.der)]
    key = escrowed_key(older, pki, tmp_path)
    assert decrypts_with(openssl_encrypt_to(found, tmp_path), older, key, tmp_path) == MESSAGE


def test_an_older_signing_only_certificate_is_not_published_again(
    ldap_settings, directory, issue_certificate, alice, settings, approver, django_capture_on_commit_callbacks
):
    settings.PORTAL_KEY_SEPARATION = True
    pair = issue_certificate(alice)
    settings.PORTAL_KEY_SEPARATION = False
    dual = issue_certificate(alice)
    assert found_certificates(directory) == [bytes(dual.der)]

    revoke(dual, approver, django_capture_on_commit_callbacks)

    assert found_certificates(directory) == [bytes(pair.der)]  # the pair's encryption certificate


# --- The Active Directory preset's userSMIMECertificate follows the same rule ---------------


@pytest.fixture
def ad_settings(ldap_settings):
    """The AD preset (userSMIMECertificate on), against slapd: its certificate attribute needs ;binary."""
    ldap_settings.PORTAL_LDAP_PRESET = "activedirectory"
    ldap_settings.PORTAL_LDAP_CERTIFICATE_ATTRIBUTE = "userCertificate;binary"
    return ldap_settings


def smime_leaves(directory, pki) -> list[bytes]:
    """The end-entity certificates inside the userSMIMECertificate values ldapsearch returns."""
    cas = {pki["material"].root.subject, pki["material"].issuing.subject}
    leaves = []
    for value in ldapsearch(directory, attribute=SMIME):
        for certificate in pkcs7.load_der_pkcs7_certificates(value):
            if certificate.subject not in cas:
                leaves.append(certificate.public_bytes(serialization.Encoding.DER))
    return leaves


def test_ad_preset_user_smime_certificate_follows_revocation_and_key_separation(
    ad_settings, directory, issue_certificate, alice, settings, approver, pki, tmp_path,
    django_capture_on_commit_callbacks,
):
    older = issue_certificate(alice)
    settings.PORTAL_KEY_SEPARATION = True
    encryption = issue_certificate(alice)
    assert smime_leaves(directory, pki) == [bytes(encryption.der)]
    assert found_certificates(directory) == [bytes(encryption.der)]

    revoke(encryption, approver, django_capture_on_commit_callbacks)

    leaves = smime_leaves(directory, pki)
    assert leaves == [bytes(older.der)]
    assert found_certificates(directory) == [bytes(older.der)]
    key = escrowed_key(older, pki, tmp_path)
    assert decrypts_with(openssl_encrypt_to(leaves, tmp_path), older, key, tmp_path) == MESSAGE


# --- A changed directory DN moves the certificates -------------------------------------------


def test_a_changed_directory_dn_moves_the_certificate_to_the_new_entry(
    ldap_settings, directory, issue_certificate, alice, django_capture_on_commit_callbacks
):
    new_dn = person_dn("dave")
    employee_upsert(user=alice, mail="alice@example.org", given_name="Alice", surname="Archer", directory_dn=ALICE)
    certificate = issue_certificate(alice)
    assert found_certificates(directory) == [bytes(certificate.der)]

    # What a confirmed identity change writes (services.identity_changes), then the resync it asks for.
    employee = alice.employee
    employee.directory_dn = new_dn
    employee.save(update_fields=["directory_dn"])
    rows = employee_directory_resync(employee=employee)
    assert [row.certificate_id for row in rows] == [certificate.pk]
    call_command("publish_pending")

    assert found_certificates(directory) == []  # nothing left at alice's old entry
    assert found_certificates(directory, base=new_dn, mail=None) == [bytes(certificate.der)]
    publication = DirectoryPublication.objects.get(certificate=certificate)
    assert publication.state == "published" and publication.entry_dn == new_dn
    # Idempotent: nothing more to do.
    assert employee_directory_resync(employee=employee)[0].pk == publication.pk
    call_command("publish_pending")
    assert found_certificates(directory, base=new_dn, mail=None) == [bytes(certificate.der)]


def test_a_confirmed_dn_change_moves_the_certificate_without_anyone_calling_the_directory(
    ldap_settings, directory, issue_certificate, alice, make_user, django_capture_on_commit_callbacks
):
    """The real path: identity_change_request_confirm announces the new DN (signals), the directory
    receiver re-syncs after commit; the DN alone binds no certificate name, so none is revoked."""
    from enrollment.roles import APPROVERS, PKI_ADMINISTRATORS
    from enrollment.services.identity_changes import identity_change_request_confirm, identity_change_request_create

    new_dn = person_dn("dave")
    employee_upsert(user=alice, mail="alice@example.org", given_name="Alice", surname="Archer", directory_dn=ALICE)
    certificate = issue_certificate(alice)
    asker = make_user("asker", groups=[PKI_ADMINISTRATORS])
    decider = make_user("decider", groups=[APPROVERS])
    request = identity_change_request_create(employee=alice.employee, actor=asker, reason="moved", directory_dn=new_dn)

    with django_capture_on_commit_callbacks(execute=True):
        identity_change_request_confirm(request_id=request.pk, actor=decider)

    certificate.refresh_from_db()
    assert certificate.status == "valid"
    assert found_certificates(directory) == []
    assert found_certificates(directory, base=new_dn, mail=None) == [bytes(certificate.der)]
