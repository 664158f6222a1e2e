"""OCSP responses (RFC 6960, RFC 8954 nonces; SBR 4.9.9 / 4.9.10). No Django.

The flow of one request: `parse_request` (DER; anything unparsable is `MalformedRequest`),
`matches_issuer` (the CertID's issuer hashes, SHA-1 or SHA-2, against the CA we answer
for), a status lookup the caller supplies, `response_builder` (BASIC response, thisUpdate
now, nextUpdate 8 hours to 10 days later, the nonce echoed, responder ID by key hash),
and a signature by a key backend's `sign_ocsp_response`. `respond` does all of it and
never raises for bad input: a malformed request gets a `malformedRequest` response, one
for a CA we don't serve `unauthorized`.

Limitation: cryptography parses requests with exactly one CertID (what browsers, mail
clients and `openssl ocsp` with one `-cert` send); a request listing several
certificates is answered with `malformedRequest`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .backends import KeyBackend
from .keys import PrivateKey, PublicKey
from .profiles import authority_key_identifier, validity_window

# SBR 4.9.10: "the difference in time between the thisUpdate and nextUpdate field,
# inclusive", at least eight hours and at most ten days for subscriber certificates.
MIN_VALIDITY = timedelta(hours=8)
MAX_VALIDITY = timedelta(days=10)
MAX_NONCE_LENGTH = 32  # RFC 8954 2.1
MAX_REQUEST_SIZE = 10_000  # one CertID and a nonce take about 120 bytes

# CertID hash algorithms we answer for (SHA-1 is what most clients still send).
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class MalformedRequest(ValueError):
    """The bytes are not an OCSP request we can answer (RFC 6960 malformedRequest)."""


class CertStatus(str, Enum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class StatusInfo:
    """What the caller's lookup knows about one serial number."""

    status: CertStatus
    revocation_time: datetime | None = None
    revocation_reason: x509.ReasonFlags | None = None

    def __post_init__(self) -> None:
        if self.status is CertStatus.REVOKED:
            if self.revocation_time is None or self.revocation_time.utcoffset() is None:
                raise ValueError("a revoked status needs a timezone-aware revocation time")
        elif self.revocation_time is not None or self.revocation_reason is not None:
            raise ValueError("only a revoked status carries a revocation time and reason")


GOOD = StatusInfo(CertStatus.GOOD)
UNKNOWN = StatusInfo(CertStatus.UNKNOWN)


@dataclass(frozen=True)
class ParsedRequest:
    serial_number: int
    hash_algorithm: hashes.HashAlgorithm
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    nonce: bytes | None


@dataclass(frozen=True)
class Responder:
    """Who signs: the CA itself, or a delegated responder certificate the CA issued."""

    certificate: x509.Certificate
    delegated: bool


def parse_request(der: bytes) -> ParsedRequest:
    """Parse a DER OCSPRequest; MalformedRequest for anything we cannot answer."""
    if not isinstance(der, (bytes, bytearray, memoryview)) or not der:
        raise MalformedRequest("empty request")
    if len(der) > MAX_REQUEST_SIZE:
        raise MalformedRequest("request too large")
    try:
        request = ocsp.load_der_ocsp_request(bytes(der))
        serial_number = request.serial_number
        issuer_name_hash = request.issuer_name_hash
        issuer_key_hash = request.issuer_key_hash
        extensions = request.extensions
    except (ValueError, TypeError) as exc:  # bad DER, several CertIDs, bad extensions
        raise MalformedRequest(f"not an OCSP request: {exc}") from None
    try:
        algorithm = request.hash_algorithm
    except UnsupportedAlgorithm:  # e.g. an MD5 CertID
        raise MalformedRequest("unsupported CertID hash algorithm") from None
    if algorithm.name not in _HASHES:
        raise MalformedRequest(f"unsupported CertID hash algorithm {algorithm.name}")
    if len(issuer_name_hash) != algorithm.digest_size or len(issuer_key_hash) != algorithm.digest_size:
        raise MalformedRequest("CertID hashes do not match the hash algorithm")
    if serial_number < 0:
        raise MalformedRequest("negative serial number")
    nonce = None
    try:
        nonce = extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        pass
    if nonce is not None and not 1 <= len(nonce) <= MAX_NONCE_LENGTH:
        raise MalformedRequest(f"the nonce must be 1 to {MAX_NONCE_LENGTH} octets (RFC 8954)")
    return ParsedRequest(serial_number, algorithm, issuer_name_hash, issuer_key_hash, nonce)


# --- CertID issuer hashes ------------------------------------------------------------------


def _tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER element at `offset`."""
    tag = data[offset]
    length = data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    return tag, offset, offset + length


def _subject_and_public_key_bits(certificate: x509.Certificate) -> tuple[bytes, bytes]:
    """The DER subject Name and the subjectPublicKey BIT STRING value, as in the certificate.

    CertID hashes are over exactly these bytes (RFC 6960 4.1.1); re-encoding the parsed
    objects could differ (e.g. a compressed EC point), so read them from the TBS.
    """
    tbs = certificate.tbs_certificate_bytes
    _, start, _ = _tlv(tbs, 0)  # TBSCertificate SEQUENCE
    offset = start
    tag, _, end = _tlv(tbs, offset)
    if tag == 0xA0:  # [0] EXPLICIT version
        offset = end
    for _ in range(4):  # serialNumber, signature, issuer, validity
        _, _, offset = _tlv(tbs, offset)
    _, _, subject_end = _tlv(tbs, offset)
    subject = tbs[offset:subject_end]
    _, spki_start, _ = _tlv(tbs, subject_end)  # SubjectPublicKeyInfo SEQUENCE
    _, _, algorithm_end = _tlv(tbs, spki_start)
    tag, bits_start, bits_end = _tlv(tbs, algorithm_end)
    if tag != 0x03:
        raise ValueError("cannot find the subjectPublicKey BIT STRING")
    return subject, tbs[bits_start + 1 : bits_end]  # skip the unused-bits octet


def issuer_hashes(issuer_certificate: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of a CertID naming `issuer_certificate`."""
    subject, key_bits = _subject_and_public_key_bits(issuer_certificate)
    return hashlib.new(algorithm.name, subject).digest(), hashlib.new(algorithm.name, key_bits).digest()


def matches_issuer(request: ParsedRequest, issuer_certificate: x509.Certificate) -> bool:
    name_hash, key_hash = issuer_hashes(issuer_certificate, request.hash_algorithm)
    return request.issuer_name_hash == name_hash and request.issuer_key_hash == key_hash


# --- Responses -----------------------------------------------------------------------------


def check_validity(validity: timedelta) -> timedelta:
    # Inclusive interval: nextUpdate - thisUpdate + 1 second (SBR 4.9.10).
    if not MIN_VALIDITY <= validity + timedelta(seconds=1) <= MAX_VALIDITY:
        raise ValueError("an OCSP response must be valid for at least 8 hours and at most 10 days")
    return validity


def response_builder(
    *,
    request: ParsedRequest,
    status: StatusInfo,
    responder: Responder,
    this_update: datetime,
    validity: timedelta,
) -> ocsp.OCSPResponseBuilder:
    """A complete, unsigned BASIC response; sign it with a key backend's sign_ocsp_response."""
    if this_update.utcoffset() is None:
        raise ValueError("this_update must be a timezone-aware datetime")
    check_validity(validity)
    revocation_reason = status.revocation_reason
    if revocation_reason is x509.ReasonFlags.unspecified:
        revocation_reason = None  # as in the CRL: unspecified is expressed by omission
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=request.hash_algorithm,
            cert_status={
                CertStatus.GOOD: ocsp.OCSPCertStatus.GOOD,
                CertStatus.REVOKED: ocsp.OCSPCertStatus.REVOKED,
                CertStatus.UNKNOWN: ocsp.OCSPCertStatus.UNKNOWN,
            }[status.status],
            this_update=this_update,
            next_update=this_update + validity,
            revocation_time=status.revocation_time,
            revocation_reason=revocation_reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder.certificate)
    )
    if responder.delegated:
        # The client needs the responder certificate to check the signature; a CA-signed
        # response needs nothing extra (an empty certs sequence is a pkilint warning).
        builder = builder.certificates([responder.certificate])
    if request.nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(request.nonce), critical=False)
    return builder


def unsuccessful_response(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(Encoding.DER)


def respond(
    *,
    request_der: bytes,
    issuer_certificate: x509.Certificate | None,
    lookup: Callable[[int], StatusInfo],
    responder: Callable[[], tuple[Responder, KeyBackend]],
    now: datetime,
    validity: timedelta,
) -> bytes:
    """The DER OCSPResponse for `request_der`, never raising for bad input.

    `issuer_certificate` None means we don't serve the CA the request names. `lookup`
    maps a serial number to its status; `responder` returns who signs and their backend
    (called only when a signed response is due, so a delegated certificate is made lazily).
    """
    try:
        request = parse_request(request_der)
    except MalformedRequest:
        return unsuccessful_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    if issuer_certificate is None or not matches_issuer(request, issuer_certificate):
        return unsuccessful_response(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    status = lookup(request.serial_number)
    signer_info, signer = responder()
    builder = response_builder(
        request=request,
        status=status,
        responder=signer_info,
        this_update=now.replace(microsecond=0),
        validity=validity,
    )
    return signer.sign_ocsp_response(builder).public_bytes(Encoding.DER)


# --- Delegated responder certificate -------------------------------------------------------

OCSP_NO_CHECK = x509.OCSPNoCheck()
_RESPONDER_SUBJECT_OIDS = (NameOID.COUNTRY_NAME, NameOID.ORGANIZATION_NAME)


def responder_key_like(ca_public_key: PublicKey) -> PrivateKey:
    """A fresh responder key of the CA key's algorithm and strength."""
    if isinstance(ca_public_key, rsa.RSAPublicKey):
        return rsa.generate_private_key(public_exponent=65537, key_size=max(ca_public_key.key_size, 2048))
    if isinstance(ca_public_key, ec.EllipticCurvePublicKey):
        return ec.generate_private_key(ca_public_key.curve)
    raise ValueError(f"unsupported CA key type {type(ca_public_key).__name__}")


def responder_subject(issuer_certificate: x509.Certificate) -> x509.Name:
    """The issuer's country and organization, and the common name "<CA name> OCSP Responder"."""
    # Only the attributes every CA/B Forum responder profile knows (the TLS BR linter flags
    # organizationIdentifier in a responder subject as unknown).
    attributes = [a for a in issuer_certificate.subject if a.oid in _RESPONDER_SUBJECT_OIDS]
    names = issuer_certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    base = str(names[0].value) if names else "CA"
    suffix = " OCSP Responder"
    common_name = base[: 64 - len(suffix)].rstrip() + suffix
    return x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def responder_certificate_builder(
    *,
    public_key: PublicKey,
    issuer_certificate: x509.Certificate,
    not_before: datetime,
    validity_days: int = 30,
) -> x509.CertificateBuilder:
    """A delegated OCSP responder certificate (RFC 6960 4.2.2.2, CA/B Forum BR 7.1.2.8).

    id-kp-OCSPSigning only, id-pkix-ocsp-nocheck (clients don't check a responder's own
    status), keyUsage digitalSignature, AKI and SKI; short-lived because it cannot be revoked in
    any way a client would notice. Sign it with the issuing CA's backend.
    """
    if not 1 <= validity_days <= 365:
        raise ValueError("a responder certificate lives 1 to 365 days")
    start, end = validity_window(not_before, validity_days)
    end = min(end, issuer_certificate.not_valid_after_utc)
    if end <= start:
        raise ValueError("the issuing CA certificate has expired")
    return (
        x509.CertificateBuilder()
        .subject_name(responder_subject(issuer_certificate))
        .issuer_name(issuer_certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(authority_key_identifier(issuer_certificate), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(OCSP_NO_CHECK, critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )


def is_responder_for(certificate: x509.Certificate, issuer_certificate: x509.Certificate) -> bool:
    """True if `certificate` is an OCSP responder certificate signed by `issuer_certificate`."""
    try:
        certificate.verify_directly_issued_by(issuer_certificate)
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        certificate.extensions.get_extension_for_class(x509.OCSPNoCheck)
    except (ValueError, TypeError, x509.ExtensionNotFound, InvalidSignature):
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in eku


__all__ = [
    "MIN_VALIDITY",
    "MAX_VALIDITY",
    "MalformedRequest",
    "CertStatus",
    "StatusInfo",
    "GOOD",
    "UNKNOWN",
    "ParsedRequest",
    "Responder",
    "parse_request",
    "issuer_hashes",
    "matches_issuer",
    "check_validity",
    "response_builder",
    "unsuccessful_response",
    "respond",
    "responder_key_like",
    "responder_subject",
    "responder_certificate_builder",
    "is_responder_for",
]
