"""`manage.py init_ca`: create or import the issuing CA; bad input ends in one readable line."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import CommandError, call_command

from enrollment.models import CertificateAuthority


@pytest.fixture
def key_dir(settings, tmp_path):
    settings.PORTAL_CA_KEY_DIR = tmp_path / "keys"
    return settings.PORTAL_CA_KEY_DIR


def test_creates_root_and_issuing_ca(db, key_dir, pkilint):
    call_command("init_ca", "--key-type", "ec-p384", "--common-name", "ACME S/MIME CA", "--organization", "ACME Inc")

    issuing = CertificateAuthority.objects.get(is_issuing=True)
    root = issuing.parent
    assert issuing.common_name == "ACME S/MIME CA" and root.parent is None
    assert isinstance(issuing.certificate.public_key(), ec.EllipticCurvePublicKey)
    assert issuing.certificate.issuer == root.certificate.subject
    # Keys on disk are encrypted, and only there.
    for ca in (root, issuing):
        pem = open(ca.key_reference, "rb").read()
        assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    code, output = pkilint(
        "lint_pkix_signer_signee_cert_chain",
        root.certificate.public_bytes(serialization.Encoding.PEM),
        issuing.certificate.public_bytes(serialization.Encoding.PEM),
        args=("lint",),
    )
    assert code == 0, output


def test_single_tier(db, key_dir):
    call_command("init_ca", "--single-tier", "--key-type", "ec-p256")
    ca = CertificateAuthority.objects.get()
    assert ca.is_issuing and ca.parent is None and ca.certificate.issuer == ca.certificate.subject


def test_refuses_a_second_issuing_ca(db, key_dir):
    call_command("init_ca", "--single-tier", "--key-type", "ec-p256")
    with pytest.raises(CommandError, match="issuing CA exists already"):
        call_command("init_ca", "--single-tier", "--key-type", "ec-p256", "--slug", "second")


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8000", "http://localhost", "https://pki.example.org", "http://pki.corp"])
def test_refuses_base_urls_that_certificates_may_not_name(db, key_dir, base_url):
    with pytest.raises(CommandError, match="base_url|http"):
        call_command("init_ca", "--single-tier", "--key-type", "ec-p256", "--base-url", base_url)
    assert not CertificateAuthority.objects.exists()


def test_imports_an_existing_ca_from_pem(db, key_dir, pki_material, tmp_path):
    cert = tmp_path / "ca.pem"
    cert.write_bytes(pki_material.issuing.public_bytes(serialization.Encoding.PEM))
    chain = tmp_path / "chain.pem"
    chain.write_bytes(pki_material.root.public_bytes(serialization.Encoding.PEM))
    key = tmp_path / "ca.key"
    key.write_bytes(
        pki_material.issuing_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"import-secret"),
        )
    )
    passphrase = tmp_path / "pass"
    passphrase.write_text("import-secret\n")

    call_command(
        "init_ca", "--import-certificate", str(cert), "--import-key", str(key),
        "--import-key-passphrase-file", str(passphrase), "--import-chain", str(chain),
    )

    issuing = CertificateAuthority.objects.get(is_issuing=True)
    assert issuing.certificate == pki_material.issuing
    assert issuing.parent.certificate == pki_material.root and issuing.parent.key_backend == "none"


def test_import_with_the_wrong_key_is_refused(db, key_dir, pki_material, tmp_path):
    cert = tmp_path / "ca.pem"
    cert.write_bytes(pki_material.issuing.public_bytes(serialization.Encoding.PEM))
    key = tmp_path / "other.key"
    key.write_bytes(
        pki_material.kra_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(CommandError, match="does not belong"):
        call_command("init_ca", "--import-certificate", str(cert), "--import-key", str(key))
    with pytest.raises(CommandError, match="cannot read"):
        call_command("init_ca", "--import-certificate", str(tmp_path / "missing.pem"), "--import-key", str(key))
