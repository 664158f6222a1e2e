"""Signing through an external key (enrollment.pki.external_signing), without a token. No Django.

The 'external' key here is a cryptography key, so what the stand-in-and-reassemble path
produces can be compared with what cryptography signs itself: for RSA (PKCS#1 v1.5 is
deterministic) the very same bytes.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp as x509_ocsp

from enrollment.pki import ca as pki_ca
from enrollment.pki import crl as pki_crl
from enrollment.pki.backends import InMemoryKeyBackend, KeyBackendError
from enrollment.pki.external_signing import ExternalKeyBackend
from enrollment.pki.keys import generate_private_key
from enrollment.pki.pkcs11 import Pkcs11KeyReference
from enrollment.pki.profiles import Organization

ORG = Organization(name="Example Widgets Inc.", organization_identifier="NTRUS+CA-1234567", country="US")


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)


def _in_one_second(sign, sign_reference):
    """Both OCSP responses, with the same producedAt (cryptography sets it to the current second)."""
    for _ in range(5):
        response, reference = sign(), sign_reference()
        if response.produced_at_utc == reference.produced_at_utc:
            return response, reference
    raise AssertionError("never signed within one second")


class _ExternalInMemory(ExternalKeyBackend):
    """An 'external' key that is a cryptography key: lets the DER reassembly be compared."""

    def __init__(self, key) -> None:
        self.key = key

    def public_key(self):
        return self.key.public_key()

    def _sign(self, data, algorithm):
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(data, padding.PKCS1v15(), algorithm)
        return self.key.sign(data, ec.ECDSA(algorithm))


@pytest.mark.parametrize("key_type", ["rsa-3072", "ec-p256", "ec-p384"])
def test_external_signatures_are_what_cryptography_itself_produces(key_type):
    key = generate_private_key(key_type)
    external, direct = _ExternalInMemory(key), InMemoryKeyBackend(key)
    subject = pki_ca.ca_subject(common_name="Example Root CA", organization=ORG)
    builder = pki_ca.root_certificate_builder(public_key=key.public_key(), subject=subject)
    root = external.sign_certificate(builder)
    root.verify_directly_issued_by(root)
    now = _now()
    crl_builder = pki_crl.crl_builder(
        issuer_certificate=root, entries=[], crl_number=1, this_update=now, next_update=now + timedelta(days=7)
    )
    revocation_list = external.sign_crl(crl_builder)
    assert revocation_list.is_signature_valid(key.public_key())
    for encoding in (x509_ocsp.OCSPResponderEncoding.HASH, x509_ocsp.OCSPResponderEncoding.NAME):
        ocsp_builder = (
            x509_ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=b"n" * 20, issuer_key_hash=b"k" * 20, serial_number=0x1234,
                algorithm=hashes.SHA1(), cert_status=x509_ocsp.OCSPCertStatus.GOOD, this_update=now,
                next_update=now + timedelta(hours=12), revocation_time=None, revocation_reason=None,
            )
            .responder_id(encoding, root)
            .certificates([root])
        )  # fmt: skip
        response, reference = _in_one_second(
            lambda b=ocsp_builder: external.sign_ocsp_response(b), lambda b=ocsp_builder: direct.sign_ocsp_response(b)
        )
        assert response.tbs_response_bytes == reference.tbs_response_bytes
        assert response.certificates == [root]
        if key_type.startswith("rsa"):  # PKCS#1 v1.5 is deterministic: the very same bytes
            assert response.public_bytes(Encoding.DER) == reference.public_bytes(Encoding.DER)
    if key_type.startswith("rsa"):
        assert revocation_list.public_bytes(Encoding.DER) == direct.sign_crl(crl_builder).public_bytes(Encoding.DER)


def test_a_signature_that_does_not_verify_is_never_returned():
    class WrongKey(_ExternalInMemory):
        def public_key(self):
            return other.public_key()

    key, other = generate_private_key("ec-p256"), generate_private_key("ec-p256")
    builder = pki_ca.root_certificate_builder(
        public_key=key.public_key(), subject=pki_ca.ca_subject(common_name="Root", organization=ORG)
    )
    with pytest.raises(KeyBackendError, match="does not verify"):
        WrongKey(key).sign_certificate(builder)


def test_key_references_are_rfc_7512_uris():
    reference = Pkcs11KeyReference("Portal CA; 2026", "issuing-ca-1a2b3c4d")
    assert reference.uri == "pkcs11:token=Portal%20CA%3B%202026;object=issuing-ca-1a2b3c4d"
    assert Pkcs11KeyReference.from_uri(reference.uri) == reference
    with pytest.raises(ValueError, match="token and object"):
        Pkcs11KeyReference.from_uri("pkcs11:token=x")


