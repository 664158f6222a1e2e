"""Signing X.509 objects with a key that Python cannot hold (an HSM, through PKCS#11).

cryptography's builders only sign with its own private key objects. So the object is first
signed with a throwaway *stand-in* key of the same algorithm (RSA, or ECDSA on the same
curve) and digest: that yields exactly the to-be-signed bytes the real key would sign,
because the signature AlgorithmIdentifier depends only on algorithm and digest
(sha256WithRSAEncryption with NULL parameters, ecdsa-with-SHA256/384 without). The external
key then signs those bytes, and the outer DER (Certificate, CertificateList, BasicOCSPResponse)
is reassembled around its signature. Every result is parsed back and its signature verified
with the real public key before it is returned.

OCSP needs one more step: cryptography refuses to sign a response whose responder certificate
does not belong to the signing key, so the stand-in signs with a stand-in responder
certificate (same subject, the stand-in key) and the ResponderID byKey is then set to the
hash of the real responder's key. This reads the builder's private fields (cryptography has no
accessors for them); a change there fails loudly in `_ocsp_builder_parts`, never silently.

No Django.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509 import ocsp
from cryptography.x509.oid import SignatureAlgorithmOID

from .backends import KeyBackend, KeyBackendError, SignatureHash, signature_hash_for
from .keys import PrivateKey, PublicKey
from .ocsp import issuer_hashes

_SEQUENCE, _BIT_STRING, _OCTET_STRING = 0x30, 0x03, 0x04
_EXPLICIT_0, _RESPONDER_BY_KEY = 0xA0, 0xA2

_SIGNATURE_ALGORITHMS: dict[tuple[type, str], x509.ObjectIdentifier] = {
    (rsa.RSAPublicKey, "sha256"): SignatureAlgorithmOID.RSA_WITH_SHA256,
    (rsa.RSAPublicKey, "sha384"): SignatureAlgorithmOID.RSA_WITH_SHA384,
    (rsa.RSAPublicKey, "sha512"): SignatureAlgorithmOID.RSA_WITH_SHA512,
    (ec.EllipticCurvePublicKey, "sha256"): SignatureAlgorithmOID.ECDSA_WITH_SHA256,
    (ec.EllipticCurvePublicKey, "sha384"): SignatureAlgorithmOID.ECDSA_WITH_SHA384,
    (ec.EllipticCurvePublicKey, "sha512"): SignatureAlgorithmOID.ECDSA_WITH_SHA512,
}


class ExternalKeyBackend(KeyBackend):
    """A key backend whose key signs raw bytes elsewhere; subclasses provide two methods.

    `_sign(data, algorithm)` returns the signature as X.509 carries it: PKCS#1 v1.5 for RSA,
    a DER Ecdsa-Sig-Value for ECDSA.
    """

    def public_key(self) -> PublicKey:
        raise NotImplementedError

    def _sign(self, data: bytes, algorithm: SignatureHash) -> bytes:
        raise NotImplementedError

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        public_key = self.public_key()
        algorithm = signature_hash_for(public_key)
        stand_in = builder.sign(stand_in_key_like(public_key), algorithm)
        _check_algorithm(stand_in.signature_algorithm_oid, public_key, algorithm)
        tbs = stand_in.tbs_certificate_bytes
        der = _with_signature(stand_in.public_bytes(Encoding.DER), tbs, self._sign(tbs, algorithm))
        certificate = x509.load_der_x509_certificate(der)
        _verify(public_key, certificate.signature, certificate.tbs_certificate_bytes, algorithm)
        return certificate

    def sign_csr(self, builder: x509.CertificateSigningRequestBuilder) -> x509.CertificateSigningRequest:
        """A PKCS#10 request for this key, for a parent CA outside the portal to sign.

        The builder takes its subjectPublicKeyInfo from the signing key, so the stand-in's is
        replaced by the real one in the CertificationRequestInfo before the real key signs it.
        """
        public_key = self.public_key()
        algorithm = signature_hash_for(public_key)
        stand_in = builder.sign(stand_in_key_like(public_key), algorithm)
        _check_algorithm(stand_in.signature_algorithm_oid, public_key, algorithm)
        info = _children(stand_in.tbs_certrequest_bytes)  # version, subject, subjectPKInfo, [0] attributes
        spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        info[2] = spki
        tbs = _encode(_SEQUENCE, b"".join(info))
        der = _with_signature(stand_in.public_bytes(Encoding.DER), tbs, self._sign(tbs, algorithm))
        request = x509.load_der_x509_csr(der)
        if request.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) != spki or (
            not request.is_signature_valid
        ):
            raise KeyBackendError("the certificate request signed by the external key does not verify")
        return request

    def sign_crl(
        self, builder: x509.CertificateRevocationListBuilder
    ) -> x509.CertificateRevocationList:
        public_key = self.public_key()
        algorithm = signature_hash_for(public_key)
        stand_in = builder.sign(stand_in_key_like(public_key), algorithm)
        _check_algorithm(stand_in.signature_algorithm_oid, public_key, algorithm)
        tbs = stand_in.tbs_certlist_bytes
        der = _with_signature(stand_in.public_bytes(Encoding.DER), tbs, self._sign(tbs, algorithm))
        crl = x509.load_der_x509_crl(der)
        if not crl.is_signature_valid(public_key):
            raise KeyBackendError("the CRL signature made by the external key does not verify")
        return crl

    def sign_ocsp_response(self, builder: ocsp.OCSPResponseBuilder) -> ocsp.OCSPResponse:
        public_key = self.public_key()
        algorithm = signature_hash_for(public_key)
        single_response, (responder, encoding), certificates, extensions = _ocsp_builder_parts(builder)
        stand_in_key = stand_in_key_like(public_key)
        stand_in_builder = ocsp.OCSPResponseBuilder(
            single_response, (_stand_in_responder(responder, stand_in_key), encoding), certificates, extensions
        )
        stand_in = stand_in_builder.sign(stand_in_key, algorithm)
        _check_algorithm(stand_in.signature_algorithm_oid, public_key, algorithm)
        key_hash = issuer_hashes(responder, hashes.SHA1())[1]
        der = _ocsp_with_signature(
            stand_in.public_bytes(Encoding.DER),
            responder_key_hash=key_hash if encoding is ocsp.OCSPResponderEncoding.HASH else None,
            sign=lambda tbs: self._sign(tbs, algorithm),
        )
        response = ocsp.load_der_ocsp_response(der)
        if encoding is ocsp.OCSPResponderEncoding.HASH and response.responder_key_hash != key_hash:
            raise KeyBackendError("the OCSP ResponderID does not name the responder's key")
        if encoding is ocsp.OCSPResponderEncoding.NAME and response.responder_name != responder.subject:
            raise KeyBackendError("the OCSP ResponderID does not name the responder")
        _verify(public_key, response.signature, response.tbs_response_bytes, algorithm)
        return response


# --- Stand-in keys -------------------------------------------------------------------------

_stand_in_keys: dict[str, PrivateKey] = {}
_stand_in_lock = threading.Lock()


def stand_in_key_like(public_key: PublicKey) -> PrivateKey:
    """A throwaway key whose signatures carry the same AlgorithmIdentifier as `public_key`'s.

    RSA: any modulus size gives sha256WithRSAEncryption, so 2048 bits (quick to generate);
    ECDSA: the same curve. One per kind and process; it never signs anything that is kept.
    """
    if isinstance(public_key, rsa.RSAPublicKey):
        kind = "rsa"
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        kind = f"ec-{public_key.curve.name}"
    else:
        raise KeyBackendError(f"unsupported CA key type {type(public_key).__name__}")
    with _stand_in_lock:
        key = _stand_in_keys.get(kind)
        if key is None:
            if isinstance(public_key, rsa.RSAPublicKey):
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            else:
                key = ec.generate_private_key(public_key.curve)
            _stand_in_keys[kind] = key
        return key


def _stand_in_responder(responder: x509.Certificate, key: PrivateKey) -> x509.Certificate:
    """A certificate with the responder's subject and the stand-in key (never leaves here)."""
    now = datetime.now(timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(responder.subject)
        .issuer_name(responder.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(minutes=1))
        .sign(key, signature_hash_for(key))
    )


def _ocsp_builder_parts(builder: ocsp.OCSPResponseBuilder) -> tuple[Any, Any, Any, Any]:
    """(single response, (responder certificate, encoding), certificates, extensions)."""
    try:
        parts = (builder._response, builder._responder_id, builder._certs, builder._extensions)
    except AttributeError as exc:  # pragma: no cover - a cryptography release renamed them
        raise KeyBackendError(f"cannot read the OCSP response builder ({exc}); update external_signing") from None
    if parts[0] is None or parts[1] is None:
        raise ValueError("an OCSP response needs a response and a responder_id before signing")
    return parts


# --- Checks --------------------------------------------------------------------------------


def _check_algorithm(oid: x509.ObjectIdentifier, public_key: PublicKey, algorithm: SignatureHash) -> None:
    kind = rsa.RSAPublicKey if isinstance(public_key, rsa.RSAPublicKey) else ec.EllipticCurvePublicKey
    if _SIGNATURE_ALGORITHMS.get((kind, algorithm.name)) != oid:
        raise KeyBackendError(f"the stand-in signature algorithm {oid.dotted_string} does not fit the CA key")


def _verify(public_key: PublicKey, signature: bytes, data: bytes, algorithm: SignatureHash) -> None:
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        else:
            public_key.verify(signature, data, ec.ECDSA(algorithm))
    except InvalidSignature:
        raise KeyBackendError(
            "the signature made by the external key does not verify with the CA public key"
        ) from None


def digest_of(data: bytes, algorithm: SignatureHash) -> bytes:
    """The digest an ECDSA token signs raw (CKM_ECDSA), where it offers no hashing mechanism."""
    return hashlib.new(algorithm.name, data).digest()


# --- DER surgery ---------------------------------------------------------------------------


def _element(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of contents, end) of the DER element at `offset` (single-byte tags)."""
    tag, first = data[offset], data[offset + 1]
    offset += 2
    if first & 0x80:
        count = first & 0x7F
        if not 1 <= count <= 4:
            raise KeyBackendError("unexpected DER length encoding")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    else:
        length = first
    if offset + length > len(data):
        raise KeyBackendError("truncated DER")
    return tag, offset, offset + length


def _children(element: bytes) -> list[bytes]:
    """The complete DER elements directly inside the constructed `element`."""
    _, offset, end = _element(element, 0)
    if end != len(element):
        raise KeyBackendError("trailing bytes after a DER element")
    children = []
    while offset < end:
        _, _, child_end = _element(element, offset)
        children.append(element[offset:child_end])
        offset = child_end
    return children


def _contents(element: bytes) -> bytes:
    _, start, end = _element(element, 0)
    return element[start:end]


def _encode(tag: int, contents: bytes) -> bytes:
    length = len(contents)
    if length < 0x80:
        return bytes([tag, length]) + contents
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + contents


def _with_signature(signed: bytes, tbs: bytes, signature: bytes) -> bytes:
    """SEQUENCE {tbs, signatureAlgorithm, signature BIT STRING, ...} with a new tbs and signature."""
    children = _children(signed)
    if len(children) < 3 or children[2][0] != _BIT_STRING:
        raise KeyBackendError("not a signed DER structure")
    rest = b"".join(children[3:])  # BasicOCSPResponse: the certs [0]
    return _encode(_SEQUENCE, tbs + children[1] + _encode(_BIT_STRING, b"\x00" + signature) + rest)


def _with_responder_key_hash(tbs_response: bytes, key_hash: bytes) -> bytes:
    """ResponseData with its ResponderID byKey replaced ([2] EXPLICIT KeyHash)."""
    children = _children(tbs_response)
    index = 1 if children[0][0] == _EXPLICIT_0 else 0  # version is DEFAULT v1, usually absent
    if children[index][0] != _RESPONDER_BY_KEY:
        raise KeyBackendError("the OCSP response names its responder by name, not key")
    children[index] = _encode(_RESPONDER_BY_KEY, _encode(_OCTET_STRING, key_hash))
    return _encode(_SEQUENCE, b"".join(children))


def _ocsp_with_signature(
    response: bytes, *, responder_key_hash: bytes | None, sign: Callable[[bytes], bytes]
) -> bytes:
    """OCSPResponse {status, [0] ResponseBytes {type, OCTET STRING BasicOCSPResponse}} re-signed."""
    status, explicit = _children(response)
    response_type, octets = _children(_contents(explicit))
    basic = _contents(octets)
    tbs = _children(basic)[0]
    if responder_key_hash is not None:
        tbs = _with_responder_key_hash(tbs, responder_key_hash)
    basic = _with_signature(basic, tbs, sign(tbs))
    response_bytes = _encode(_SEQUENCE, response_type + _encode(_OCTET_STRING, basic))
    return _encode(_SEQUENCE, status + _encode(_EXPLICIT_0, response_bytes))


__all__ = ["ExternalKeyBackend", "stand_in_key_like", "digest_of"]
