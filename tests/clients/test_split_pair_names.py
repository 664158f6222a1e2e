"""A split pair (key separation) shows in NSS as two certificates with two names (issue 14, finding 7).

NSS keeps one nickname per subject: a second PKCS#12 whose certificate has the same subject as one
already in the database is filed under the first one's nickname, whatever its friendly name. So
the profile gives the signing and the encryption certificate different subjects (subject:
serialNumber, allowed by the SBR for sponsor- and mailbox-validated certificates), and bundles.py
gives them different friendly names. Checked with the real NSS (certutil/pk12util), and with
pkilint for both certificate types, and once through the portal's own services.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from test_pkcs12_clients import nss_db, require, run

from enrollment.pki import ca, keys, pkcs12, profiles
from enrollment.pki.backends import InMemoryKeyBackend

ORG = profiles.Organization("Example Widgets Inc.", "NTRUS+CA-1234567", "US")
PASSPHRASE = "split pair passphrase 1"
DB_PASSWORD = "nss-db-password"  # test_pkcs12_clients.nss_db's
ISSUER_NAME = "Split Pair S/MIME CA"


@pytest.fixture(scope="module")
def issuer():
    root_key = keys.generate_private_key("rsa-4096")
    root = ca.create_root_certificate(
        key=root_key, subject=ca.ca_subject(common_name="Split Pair Root CA", organization=ORG)
    )
    issuing_key = keys.generate_private_key("rsa-3072")
    issuing = InMemoryKeyBackend(root_key).sign_certificate(
        ca.issuing_ca_builder(
            public_key=issuing_key.public_key(),
            subject=ca.ca_subject(common_name=ISSUER_NAME, organization=ORG),
            issuer=profiles.IssuerInfo(root, "http://pki.example.com/r.crl", "http://pki.example.com/r.cer"),
        )
    )
    info = profiles.IssuerInfo(issuing, "http://pki.example.com/i.crl", "http://pki.example.com/i.cer")
    return InMemoryKeyBackend(issuing_key), info, [issuing, root]


def issue(issuer, *, usage: str, certificate_type: str = "sponsor-strict", key_type: str = "rsa-3072"):
    backend, info, _ = issuer
    key = keys.generate_private_key(key_type)
    certificate = backend.sign_certificate(
        profiles.smime_certificate_builder(
            certificate_type=certificate_type,
            subscriber=profiles.Subscriber("jane.doe@example.com", "Jane", "Doe"),
            organization=ORG,
            issuer=info,
            public_key=key.public_key(),
            not_before=datetime.now(timezone.utc) - timedelta(minutes=1),
            usage=usage,
        )
    )
    return key, certificate


def friendly_name(usage: str) -> str:
    """As enrollment/bundles.py names a freshly issued certificate's PKCS#12."""
    return f"Jane Doe S/MIME{'' if usage == 'dual' else f' {usage}'} ({ISSUER_NAME})"


def own_certificates(db: str) -> list[str]:
    """The nickname of every certificate NSS holds a private key for ("u,u,u"), one row each."""
    listing = run(require("certutil"), "-L", "-d", db)
    assert listing.returncode == 0, listing.stderr
    rows = []
    for line in listing.stdout.splitlines():
        parts = line.rsplit(None, 1)
        if len(parts) == 2 and parts[1] == "u,u,u":
            rows.append(parts[0].strip())
    return rows


def import_bundle(tmp_path: Path, db: str, issuer, key, certificate, name: str) -> None:
    _, _, chain = issuer
    path = tmp_path / f"{certificate.serial_number:x}.p12"
    path.write_bytes(
        pkcs12.pkcs12_bundle(
            key=key, certificate=certificate, chain=chain, friendly_name=name, passphrase=PASSPHRASE, fmt="modern"
        )
    )
    result = run(require("pk12util"), "-i", path, "-d", db, "-W", PASSPHRASE, "-K", DB_PASSWORD)
    assert result.returncode == 0 and "PKCS12 IMPORT SUCCESSFUL" in result.stdout + result.stderr, (
        result.stdout + result.stderr
    )


def certificate_named(db: str, nickname: str) -> x509.Certificate:
    exported = run(require("certutil"), "-L", "-d", db, "-n", nickname, "-a")
    assert exported.returncode == 0, exported.stderr
    return x509.load_pem_x509_certificate(exported.stdout.encode())


@pytest.mark.parametrize("certificate_type", sorted(profiles.CERTIFICATE_TYPES))
def test_the_two_certificates_of_a_pair_differ_in_the_subject(issuer, certificate_type):
    _, signing = issue(issuer, usage="signing", certificate_type=certificate_type)
    _, encryption = issue(issuer, usage="encryption", certificate_type=certificate_type)
    _, dual = issue(issuer, usage="dual", certificate_type=certificate_type)
    assert signing.subject != encryption.subject

    def serial_numbers(certificate):
        return [a.value for a in certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)]

    assert serial_numbers(signing) == ["signing"]
    assert serial_numbers(encryption) == ["encryption"]
    assert serial_numbers(dual) == []  # a dual-use certificate's subject is unchanged


@pytest.mark.parametrize("key_type", ["rsa-3072", "ec-p256"])
@pytest.mark.parametrize("certificate_type", sorted(profiles.CERTIFICATE_TYPES))
@pytest.mark.parametrize("usage", ["signing", "encryption"])
def test_pkilint_accepts_the_distinguishing_attribute(issuer, pkilint, usage, certificate_type, key_type):
    _, certificate = issue(issuer, usage=usage, certificate_type=certificate_type, key_type=key_type)
    code, output = pkilint(
        "lint_cabf_smime_cert", certificate.public_bytes(Encoding.PEM), args=("lint", "-d", "-s", "WARNING")
    )
    assert code == 0 and output.strip() == "", output


@pytest.mark.parametrize("certificate_type", sorted(profiles.CERTIFICATE_TYPES))
def test_nss_lists_the_pair_under_two_nicknames(issuer, tmp_path, certificate_type):
    db, _ = nss_db(tmp_path)
    pair = {usage: issue(issuer, usage=usage, certificate_type=certificate_type) for usage in ("signing", "encryption")}
    for usage, (key, certificate) in pair.items():
        import_bundle(tmp_path, db, issuer, key, certificate, friendly_name(usage))

    nicknames = own_certificates(db)
    assert sorted(nicknames) == sorted({friendly_name("signing"), friendly_name("encryption")}), nicknames
    for usage, (_, certificate) in pair.items():
        assert certificate_named(db, friendly_name(usage)) == certificate


def test_nss_files_one_subject_under_one_nickname(issuer, tmp_path):
    """Why the subject must differ: two certificates of one subject share the first nickname in NSS,
    distinct friendly names notwithstanding (what split pairs looked like before)."""
    db, _ = nss_db(tmp_path)
    for name in ("Jane Doe S/MIME first", "Jane Doe S/MIME second"):
        key, certificate = issue(issuer, usage="dual")
        import_bundle(tmp_path, db, issuer, key, certificate, name)
    assert own_certificates(db) == ["Jane Doe S/MIME first", "Jane Doe S/MIME first"]


def test_a_pair_issued_by_the_portal_shows_as_two_in_nss(pki, alice, approver, settings, tmp_path):
    """Through the services: the split pair's own PKCS#12 files (enrollment/bundles.py's friendly names)."""
    from cryptography.hazmat.primitives.serialization import pkcs12 as crypto_pkcs12

    from enrollment.services.issuance import certificate_pkcs12_export
    from enrollment.services.requests import certificate_request_approve, certificate_request_create

    settings.PORTAL_KEY_SEPARATION = True
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="rsa-3072")
    request = certificate_request_approve(request_id=request.pk, approver=approver)
    assert request.state == "issued", request.reason
    certificates = {c.usage: c for c in request.certificates.all()}
    assert set(certificates) == {"signing", "encryption"}

    db, _ = nss_db(tmp_path)
    names = {}
    for usage, certificate in certificates.items():
        _, bundle = certificate_pkcs12_export(user=alice, serial=certificate.serial, passphrase=PASSPHRASE)
        names[usage] = crypto_pkcs12.load_pkcs12(bundle, PASSPHRASE.encode()).cert.friendly_name.decode()
        path = tmp_path / f"{usage}.p12"
        path.write_bytes(bundle)
        result = run(require("pk12util"), "-i", path, "-d", db, "-W", PASSPHRASE, "-K", DB_PASSWORD)
        assert result.returncode == 0, result.stdout + result.stderr

    assert names["signing"] != names["encryption"]
    nicknames = own_certificates(db)
    assert len(nicknames) == 2 and len(set(nicknames)) == 2, nicknames
    for usage, certificate in certificates.items():
        assert certificate_named(db, names[usage]) == certificate.x509
