"""A real OpenLDAP server for the directory tests, and settings that point the portal at it."""

from __future__ import annotations

import pytest
from portal_testing import require_tool
from slapd_server import CA_ENTRY_DN, PEOPLE_DN, PUBLISHER_DN, PUBLISHER_PASSWORD, SlapdServer, find_program, group_dn


@pytest.fixture(scope="session")
def slapd_server(tmp_path_factory):
    """One slapd for the session; stopped (process group killed) at the end."""
    slapd = find_program("slapd") or require_tool("slapd")
    slapadd = find_program("slapadd") or require_tool("slapadd")
    server = SlapdServer(tmp_path_factory.mktemp("slapd"), slapd=slapd, slapadd=slapadd)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def directory(slapd_server):
    """The running server, with no certificate values on alice's and bob's entries."""
    slapd_server.start()  # an outage test may have left it stopped
    slapd_server.reset_people()
    yield slapd_server
    slapd_server.start()


@pytest.fixture
def ldap_settings(settings, directory):
    """The portal publishes to the test server (OpenLDAP preset, the publisher account)."""
    settings.PORTAL_LDAP_URI = directory.uri
    settings.PORTAL_LDAP_PRESET = "openldap"
    settings.PORTAL_LDAP_BIND_DN = PUBLISHER_DN
    settings.PORTAL_LDAP_BIND_PASSWORD = PUBLISHER_PASSWORD
    settings.PORTAL_LDAP_USER_BASE_DN = PEOPLE_DN
    settings.PORTAL_LDAP_START_TLS = False
    settings.PORTAL_LDAP_CA_FILE = ""
    settings.PORTAL_LDAP_PUBLISH_SMIME_CAPABLE = None
    settings.PORTAL_LDAP_TIMEOUT = 2
    settings.PORTAL_LDAP_RECEIVE_TIMEOUT = 5
    return settings


@pytest.fixture
def ldap_login(db, ldap_settings, directory):
    """Directory log-in against the test server: the role group DNs set, the demo accounts as loaded."""
    from portal.ldap_auth import authentication_backends

    directory.reset_accounts()
    ldap_settings.PORTAL_LDAP_USER_FILTER = ""
    ldap_settings.PORTAL_LDAP_APPROVERS_GROUP_DN = group_dn("approvers")
    ldap_settings.PORTAL_LDAP_AUDITORS_GROUP_DN = group_dn("auditors")
    ldap_settings.PORTAL_LDAP_ADMINS_GROUP_DN = group_dn("admins")
    ldap_settings.PORTAL_LDAP_GROUP_BASE_DN = ""
    # settings.py lists the backends once, from the environment; here the URI came later.
    # The lockout backend first, as there (portal/lockout.py).
    ldap_settings.AUTHENTICATION_BACKENDS = [
        "portal.lockout.LockoutBackend", *authentication_backends(ldap_uri=directory.uri)
    ]
    yield ldap_settings
    directory.start()
    directory.reset_accounts()


@pytest.fixture
def ldap_ca_entry(db, ldap_settings, directory):
    """The portal publishes its CA to the test server's CA entry (empty at the start)."""
    directory.reset_ca_entry()
    ldap_settings.PORTAL_LDAP_CA_ENTRY_DN = CA_ENTRY_DN
    yield ldap_settings
    directory.start()
    directory.reset_ca_entry()


@pytest.fixture
def issue_certificate(pki, approver, django_capture_on_commit_callbacks):
    """Request and approve a certificate for an employee user, running on_commit work (publishing)."""
    from enrollment.services.requests import certificate_request_approve, certificate_request_create

    def issue(user, *, key_type: str = "ec-p256"):
        with django_capture_on_commit_callbacks(execute=True):
            request = certificate_request_create(employee=user.employee, submitted_by=user, key_type=key_type)
            request = certificate_request_approve(request_id=request.pk, approver=approver)
        assert request.state == "issued", request.reason
        return request.certificate

    return issue


@pytest.fixture
def foreign_certificate():
    """A self-signed certificate for alice that someone else put into the directory."""
    return make_certificate("Alice Archer (personal)")


@pytest.fixture
def make_foreign_certificate():
    """Certificates the portal did not issue, optionally naming the portal's CA as issuer."""
    return make_certificate


def make_certificate(common_name: str, *, issuer_name=None, mail: str = "alice@example.org"):
    """A certificate signed by a throwaway key (self-signed unless issuer_name is given)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(mail)]), critical=False)
        .sign(key, hashes.SHA256())
    )
