"""The issuing CA certificate and its current CRL on the directory's CA entry (pkiCA), against the real slapd."""

from __future__ import annotations

import subprocess

import pytest
from cryptography import x509
from django.core.management import CommandError, call_command
from portal_testing import require_tool
from slapd_server import CA_ENTRY_DN, DIRECTORY_PASSWORDS, PKI_DN, find_program, person_dn

from audit.models import AuditEvent
from enrollment.directory.ca_entry import ca_entry_publish
from enrollment.directory.config import DirectoryConfig
from enrollment.revocation.services import certificate_revoke, crl_generate

CA_ATTRIBUTE = "cACertificate;binary"
CRL_ATTRIBUTE = "certificateRevocationList;binary"


def crl_number(der: bytes) -> int:
    return x509.load_der_x509_crl(der).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_publish_ca_command_writes_certificate_and_crl(ldap_ca_entry, directory, pki, capsys):
    ca = pki["issuing"]

    call_command("publish_ca")

    ca.refresh_from_db()
    assert directory.values(CA_ENTRY_DN, CA_ATTRIBUTE) == [bytes(ca.certificate_der)]
    crls = directory.values(CA_ENTRY_DN, CRL_ATTRIBUTE)
    assert crls == [bytes(ca.crl_der)]
    crl = x509.load_der_x509_crl(crls[0])
    assert crl.issuer == ca.certificate.subject and crl.is_signature_valid(ca.certificate.public_key())
    assert f"CA issuing-ca: {CA_ENTRY_DN}: CA certificate and CRL written." in capsys.readouterr().out
    event = AuditEvent.objects.get(action="directory.ca_published")
    assert event.details == {"ca": "issuing-ca", "entry_dn": CA_ENTRY_DN, "changed": True, "crl_number": ca.crl_number}
    assert event.object_type == "enrollment.certificateauthority" and event.object_id == str(ca.pk)


def test_publishing_again_writes_nothing_and_a_new_crl_replaces_the_old(ldap_ca_entry, directory, pki):
    ca = pki["issuing"]
    first = ca_entry_publish(ca=ca)
    assert first.ok and first.changed and first.entry_dn == CA_ENTRY_DN
    old_crl = directory.values(CA_ENTRY_DN, CRL_ATTRIBUTE)[0]

    again = ca_entry_publish(ca=ca)
    assert again.ok and not again.changed

    crl_generate(ca=ca)  # what revocation does; the lead's receiver then publishes
    ca.refresh_from_db()
    after = ca_entry_publish(ca=ca)

    assert after.ok and after.changed
    crls = directory.values(CA_ENTRY_DN, CRL_ATTRIBUTE)
    assert crls == [bytes(ca.crl_der)] and crl_number(crls[0]) == crl_number(old_crl) + 1
    assert directory.values(CA_ENTRY_DN, CA_ATTRIBUTE) == [bytes(ca.certificate_der)]


def test_revocation_puts_the_new_crl_on_the_ca_entry(ldap_ca_entry, directory, issued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        certificate_revoke(serial=issued.serial, actor=None, reason="key_compromise")

    crls = directory.values(CA_ENTRY_DN, CRL_ATTRIBUTE)
    assert len(crls) == 1
    revoked = x509.load_der_x509_crl(crls[0]).get_revoked_certificate_by_serial_number(int(issued.serial, 16))
    assert revoked is not None
    assert AuditEvent.objects.filter(action="directory.ca_published").exists()


def test_ldapsearch_reads_the_ca_entry(ldap_ca_entry, directory, pki):
    ldapsearch = find_program("ldapsearch") or require_tool("ldapsearch")
    ca_entry_publish(ca=pki["issuing"])

    result = subprocess.run(
        [ldapsearch, "-x", "-LLL", "-o", "ldif-wrap=no", "-H", directory.uri, "-b", PKI_DN,
         "(objectClass=pkiCA)", "cACertificate;binary", "certificateRevocationList;binary"],
        capture_output=True, text=True, timeout=30,
    )

    assert result.returncode == 0, result.stderr
    assert f"dn: {CA_ENTRY_DN}" in result.stdout
    assert "cACertificate;binary:: " in result.stdout and "certificateRevocationList;binary:: " in result.stdout


def test_directory_down_is_recorded_not_raised(ldap_ca_entry, directory, pki):
    directory.stop()

    outcome = ca_entry_publish(ca=pki["issuing"])

    assert not outcome.ok and "cannot connect" in outcome.error
    event = AuditEvent.objects.get(action="directory.ca_publish_failed")
    assert event.details["entry_dn"] == CA_ENTRY_DN and "cannot connect" in event.details["error"]
    with pytest.raises(CommandError, match=r"^publishing CA issuing-ca failed: ldap://127\.0\.0\.1:\d+: cannot connect") as info:
        call_command("publish_ca")
    assert "\n" not in str(info.value)

    directory.start()
    call_command("publish_ca")
    assert directory.values(CA_ENTRY_DN, CA_ATTRIBUTE) == [bytes(pki["issuing"].certificate_der)]


def test_a_missing_entry_or_no_write_access_is_a_clear_failure(ldap_ca_entry, directory, pki):
    ldap_ca_entry.PORTAL_LDAP_CA_ENTRY_DN = f"cn=No Such CA,{PKI_DN}"
    missing = ca_entry_publish(ca=pki["issuing"])
    assert not missing.ok and "No directory entry" in missing.error

    ldap_ca_entry.PORTAL_LDAP_CA_ENTRY_DN = CA_ENTRY_DN
    ldap_ca_entry.PORTAL_LDAP_BIND_DN = person_dn("carol")  # may read the entry, not write it
    ldap_ca_entry.PORTAL_LDAP_BIND_PASSWORD = DIRECTORY_PASSWORDS["carol"]
    refused = ca_entry_publish(ca=pki["issuing"])
    assert not refused.ok and "insufficientAccessRights: the bind account may not write" in refused.error, refused.error
    assert directory.values(CA_ENTRY_DN, CA_ATTRIBUTE) == []


def test_without_a_ca_entry_nothing_happens(ldap_settings, pki, settings):
    settings.PORTAL_LDAP_CA_ENTRY_DN = ""
    outcome = ca_entry_publish(ca=pki["issuing"])
    assert outcome.ok and outcome.skipped
    assert not AuditEvent.objects.filter(action__startswith="directory.ca_").exists()
    with pytest.raises(CommandError, match="set PORTAL_LDAP_URI and PORTAL_LDAP_CA_ENTRY_DN"):
        call_command("publish_ca")

    settings.PORTAL_LDAP_URI = ""
    assert ca_entry_publish(ca=pki["issuing"]).skipped


def test_publish_ca_names_an_unknown_ca(ldap_ca_entry, pki):
    with pytest.raises(CommandError, match="no CA with the slug 'nope'"):
        call_command("publish_ca", "--ca", "nope")


@pytest.mark.parametrize(
    "preset, certificate_attribute, crl_attribute",
    [
        ("openldap", "cACertificate;binary", "certificateRevocationList;binary"),
        ("activedirectory", "cACertificate", "certificateRevocationList"),
    ],
)
def test_presets_name_the_ca_attributes(settings, preset, certificate_attribute, crl_attribute):
    settings.PORTAL_LDAP_URI = "ldap://ldap.example.org"
    settings.PORTAL_LDAP_USER_BASE_DN = "dc=example,dc=org"
    settings.PORTAL_LDAP_PRESET = preset
    settings.PORTAL_LDAP_CA_ENTRY_DN = "cn=CA,dc=example,dc=org"
    config = DirectoryConfig.from_settings()
    assert (config.ca_certificate_attribute, config.crl_attribute) == (certificate_attribute, crl_attribute)
    assert config.ca_entry_dn == "cn=CA,dc=example,dc=org"
