"""PKCS#12 bundles (key + certificate + chain) for the subscriber's download."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from .keys import PrivateKey

PKCS12_FORMATS: dict[str, str] = {
    "compatible": "Compatible (3DES, SHA-1 MAC): imports everywhere, needed by Apple devices, "
    "KMail/Kleopatra (gpgsm), Android and older Windows",
    "modern": "Modern (AES-256, SHA-256 MAC): Windows 10/11, Thunderbird, Evolution, OpenSSL",
}

MIN_PASSPHRASE_LENGTH = 12

_ALGORITHMS = {
    "modern": (pkcs12.PBES.PBESv2SHA256AndAES256CBC, hashes.SHA256()),
    # Apple's importers on many releases, gpgsm 2.2 (KMail/Kleopatra), older Android and
    # Windows Server 2016 only read this one (they report a "wrong password" or an
    # `encryptedData error at "pkcs5PBES2-params"` for PBES2): pkcs12_clients.py.
    "compatible": (pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC, hashes.SHA1()),
}


def _common_name(certificate: x509.Certificate) -> bytes | None:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value).encode() if names else None


def pkcs12_bundle(
    *,
    key: PrivateKey,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    friendly_name: str,
    passphrase: str,
    fmt: str = "modern",
) -> bytes:
    """DER PKCS#12 with the key and certificate (under `friendly_name`) and the CA chain."""
    if fmt not in _ALGORITHMS:
        raise ValueError(
            f"unknown PKCS#12 format {fmt!r}; expected one of {', '.join(_ALGORITHMS)}"
        )
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise ValueError(f"the passphrase must have at least {MIN_PASSPHRASE_LENGTH} characters")
    if not friendly_name.strip():
        raise ValueError("the friendly name is empty")
    if key.public_key() != certificate.public_key():
        raise ValueError("the private key does not belong to the certificate")
    key_cert_algorithm, mac_hash = _ALGORITHMS[fmt]
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .key_cert_algorithm(key_cert_algorithm)
        .hmac_hash(mac_hash)
        .build(passphrase.encode("utf-8"))
    )
    # CA certificates get their common name as friendly name (NSS uses it as nickname).
    cas = [pkcs12.PKCS12Certificate(ca, _common_name(ca)) for ca in chain]
    return pkcs12.serialize_key_and_certificates(
        friendly_name.encode("utf-8"), key, certificate, cas, encryption
    )


def load_pkcs12(data: bytes, passphrase: str | bytes) -> pkcs12.PKCS12KeyAndCertificates:
    """Parse a bundle (ValueError on a wrong passphrase or a damaged file)."""
    secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    return pkcs12.load_pkcs12(data, secret)
