"""StartTLS and ldaps:// with CA verification, and a stock OpenLDAP schema, against real slapd."""

from __future__ import annotations

import pytest
from portal_testing import require_tool
from slapd_server import SlapdServer, find_program, person_dn

from enrollment.directory.batch import publication_attempt
from enrollment.directory.services import publication_schedule

ALICE = person_dn("alice")
BINARY = "userCertificate;binary"


def attempt(certificate):
    return publication_attempt(publication=publication_schedule(certificate=certificate))


def test_start_tls_verified_with_the_ca_file(ldap_settings, directory, issued):
    ldap_settings.PORTAL_LDAP_START_TLS = True
    ldap_settings.PORTAL_LDAP_CA_FILE = str(directory.ca_file)

    result = attempt(issued)

    assert result.ok, result.error
    assert directory.values(ALICE, BINARY) == [bytes(issued.der)]


def test_ldaps_verified_with_the_ca_file(ldap_settings, directory, issued):
    ldap_settings.PORTAL_LDAP_URI = directory.ldaps_uri
    ldap_settings.PORTAL_LDAP_CA_FILE = str(directory.ca_file)

    result = attempt(issued)

    assert result.ok, result.error
    assert directory.values(ALICE, BINARY) == [bytes(issued.der)]


@pytest.mark.parametrize("mode", ["starttls", "ldaps"])
def test_untrusted_server_certificate_is_refused(ldap_settings, directory, issued, mode):
    # The system's CAs do not know the test server's: verification must fail, readably.
    if mode == "starttls":
        ldap_settings.PORTAL_LDAP_START_TLS = True
    else:
        ldap_settings.PORTAL_LDAP_URI = directory.ldaps_uri

    result = attempt(issued)

    assert not result.ok and result.unavailable
    assert result.publication.state == "failed"
    error = result.publication.last_error
    assert ("StartTLS failed" if mode == "starttls" else "cannot connect") in error
    assert "certificate verify failed" in error.lower() or "certificate_verify_failed" in error.lower(), error
    assert directory.values(ALICE, BINARY) == []


@pytest.fixture(scope="module")
def stock_slapd(tmp_path_factory):
    """slapd with only core, cosine and inetorgperson: no organizationIdentifier."""
    server = SlapdServer(
        tmp_path_factory.mktemp("stock-slapd"),
        slapd=find_program("slapd") or require_tool("slapd"),
        slapadd=find_program("slapadd") or require_tool("slapadd"),
        portal_schema=False,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_stock_openldap_schema_names_the_missing_attribute_type(ldap_settings, stock_slapd, issued):
    ldap_settings.PORTAL_LDAP_URI = stock_slapd.uri

    result = attempt(issued)

    assert not result.ok and not result.unavailable
    assert "invalidAttributeSyntax" in result.error
    assert "organizationidentifier.ldif" in result.error
