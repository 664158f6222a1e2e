import stat
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from enrollment.pki import keys
from enrollment.pki.backends import (
    EncryptedFileKeyBackend,
    InMemoryKeyBackend,
    KeyBackend,
    KeyBackendError,
    signature_hash_for,
)
from enrollment.pki.crl import crl_builder

PASSPHRASE = b"correct horse battery staple"


@pytest.mark.parametrize(
    "key, expected",
    [
        (rsa.generate_private_key(65537, 2048), hashes.SHA256),
        (ec.generate_private_key(ec.SECP256R1()), hashes.SHA256),
        (ec.generate_private_key(ec.SECP384R1()), hashes.SHA384),
        (ec.generate_private_key(ec.SECP521R1()), hashes.SHA512),
    ],
)
def test_signature_hash_for(key, expected):
    assert isinstance(signature_hash_for(key), expected)
    assert isinstance(signature_hash_for(key.public_key()), expected)


def test_signature_hash_for_unsupported_curve():
    with pytest.raises(ValueError, match="unsupported curve"):
        signature_hash_for(ec.generate_private_key(ec.SECP256K1()))


@pytest.fixture(scope="module")
def ca_key():
    return keys.generate_private_key("ec-p384")


def test_store_and_load_round_trip(tmp_path, ca_key, ec_pki, subscriber_keys, subscriber_builder):
    path = tmp_path / "secrets" / "ca" / "issuing.key.pem"  # parents are created
    stored = EncryptedFileKeyBackend.store(path=path, key=ca_key, passphrase=PASSPHRASE)
    assert isinstance(stored, KeyBackend)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert keys.private_key_to_der(ca_key) not in pem
    assert b"PRIVATE KEY" in pem and b"-----BEGIN PRIVATE KEY-----" not in pem

    loaded = EncryptedFileKeyBackend(path=str(path), passphrase=PASSPHRASE)
    assert loaded.public_key() == ca_key.public_key()
    # Sign with the loaded key and check with the original public key.
    cert = loaded.sign_certificate(
        subscriber_builder(ec_pki, subscriber_keys["ec-p256"].public_key())
    )
    ca_key.public_key().verify(
        cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
    )


def test_store_refuses_to_overwrite(tmp_path, ca_key):
    path = tmp_path / "ca.key.pem"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        EncryptedFileKeyBackend.store(path=path, key=ca_key, passphrase=PASSPHRASE)
    assert path.read_bytes() == b"precious"


def test_wrong_passphrase(tmp_path, ca_key):
    path = tmp_path / "ca.key.pem"
    EncryptedFileKeyBackend.store(path=path, key=ca_key, passphrase=PASSPHRASE)
    backend = EncryptedFileKeyBackend(path=path, passphrase=b"wrong")  # lazy: no error yet
    with pytest.raises(KeyBackendError) as excinfo:
        backend.public_key()
    assert str(excinfo.value) == f"cannot decrypt the CA key at {path}: wrong passphrase?"


def test_missing_file(tmp_path):
    backend = EncryptedFileKeyBackend(path=tmp_path / "nope.pem", passphrase=PASSPHRASE)
    with pytest.raises(KeyBackendError, match="does not exist"):
        backend.sign_crl(x509.CertificateRevocationListBuilder())


def test_in_memory_backend_signs_crls(ec_pki, now):
    backend = InMemoryKeyBackend(ec_pki.issuing_key)
    this_update = now()
    revocation_list = backend.sign_crl(
        crl_builder(
            issuer_certificate=ec_pki.issuing,
            entries=[],
            crl_number=1,
            this_update=this_update,
            next_update=this_update + timedelta(days=7),
        )
    )
    assert revocation_list.is_signature_valid(ec_pki.issuing.public_key())
    assert backend.public_key() == ec_pki.issuing_key.public_key()
