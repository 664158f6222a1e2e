"""The publisher's decisions, with a stand-in client: concurrent changes, what is kept. No server."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from ldap3.core.exceptions import LDAPAttributeOrValueExistsResult

from enrollment.directory import publisher
from enrollment.directory.client import DirectoryEntry, DirectoryError, EntryLocator
from enrollment.directory.config import DirectoryConfig

DN = "uid=alice,ou=people,dc=example,dc=org"
ATTRIBUTE = "userCertificate;binary"


class FakeClient:
    """Holds one entry; the first `conflicts` writes fail as if someone wrote in between."""

    def __init__(self, values=(), conflicts=0):
        self.config = DirectoryConfig(uri="ldap://ldap.example.org", user_base_dn="ou=people,dc=example,dc=org")
        self.values = list(values)
        self.conflicts = conflicts
        self.writes = 0

    def find_entry(self, locator, *, attributes):
        return DirectoryEntry(dn=DN, values={ATTRIBUTE: list(self.values)})

    def modify_values(self, dn, *, add, delete, replace):
        if self.conflicts:
            self.conflicts -= 1
            raise LDAPAttributeOrValueExistsResult(result=20, description="attributeOrValueExists")
        self.writes += 1
        self.values = [v for v in self.values if v not in delete.get(ATTRIBUTE, [])] + add.get(ATTRIBUTE, [])


def publish(client, certificate, issuers):
    return publisher.sync_entry(
        client, EntryLocator(mail="alice@example.org"), wanted=[publisher.Wanted(certificate)], issuers=issuers
    )


@pytest.fixture
def ours(pki_material):
    """Two end-entity certificates signed by the test issuing CA, the second issued later."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    issuing = pki_material.issuing
    made = []
    for days_ago in (2, 1):
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days_ago)
        made.append(
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Alice")]))
            .issuer_name(issuing.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuing.public_key()), critical=False)
            .sign(pki_material.issuing_key, hashes.SHA256())
        )
    return made


def test_a_concurrent_write_is_read_again_and_retried(ours, pki_material):
    client = FakeClient(conflicts=1)
    outcome = publish(client, ours[0], [pki_material.issuing])
    assert outcome.changed and client.writes == 1
    assert client.values == [ours[0].public_bytes(Encoding.DER)]


def test_an_entry_that_keeps_changing_is_a_readable_failure(ours, pki_material):
    client = FakeClient(conflicts=10)
    with pytest.raises(DirectoryError, match="kept changing"):
        publish(client, ours[0], [pki_material.issuing])


def test_the_portals_other_values_go_foreign_ones_stay(ours, pki_material, foreign_certificate):
    older, newer = (c.public_bytes(Encoding.DER) for c in ours)
    foreign = foreign_certificate.public_bytes(Encoding.DER)

    client = FakeClient(values=[foreign, older])
    outcome = publish(client, ours[1], [pki_material.issuing])
    assert client.values == [foreign, newer]
    assert outcome.removed == [publisher.fingerprint(ours[0])]
    assert outcome.added == [publisher.fingerprint(ours[1])]

    # Which one is wanted is the caller's decision (the database's); the entry follows it.
    outcome = publish(client, ours[1], [pki_material.issuing])
    assert client.values == [foreign, newer] and not outcome.changed


def test_issued_by_checks_the_signature(ours, pki_material, make_foreign_certificate):
    assert publisher.issued_by(ours[0], [pki_material.root, pki_material.issuing])
    assert not publisher.issued_by(ours[0], [pki_material.root])
    impostor = make_foreign_certificate("Alice", issuer_name=pki_material.issuing.subject)
    assert not publisher.issued_by(impostor, [pki_material.issuing])
