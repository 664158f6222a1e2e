"""PKCS#12 bundles (key + certificate + chain) for the subscriber's download."""

from __future__ import annotations

import hashlib
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
    for _ in range(_GPGSM_ATTEMPTS):
        der = pkcs12.serialize_key_and_certificates(
            friendly_name.encode("utf-8"), key, certificate, cas, encryption
        )
        if fmt != "compatible" or not any(
            gpgsm_misderives_3des_key(salt=salt, passphrase=passphrase, iterations=iterations)
            for salt, iterations in pbe_3des_parameters(der)
        ):
            break
    return der


# --- gpgsm 2.2 (KMail, Kleopatra) and the salt ---------------------------------------------------
# gpgsm 2.2's PKCS#12 key derivation (minip12.c, set_key_iv) writes each block I_j + B + 1 back
# with gcry_mpi_print, which drops a leading zero byte: for about 1 salt in 128 it derives a wrong
# 3DES key and reports "possibly bad passphrase" for the right one. The salt is random, so a
# compatible file whose salts hit that is serialized again (a fresh salt); 1 file in 60 before.
_GPGSM_ATTEMPTS = 8
_PBE_SHA1_3DES_OID = bytes.fromhex("060a2a864886f70d010c0103")  # pbeWithSHAAnd3-KeyTripleDES-CBC


def pbe_3des_parameters(der: bytes) -> list[tuple[bytes, int]]:
    """(salt, iterations) of every pbeWithSHAAnd3-KeyTripleDES-CBC in a PKCS#12 file.

    The parameters follow the algorithm's OID: SEQUENCE { OCTET STRING salt, INTEGER iterations }.
    """
    found = []
    start = der.find(_PBE_SHA1_3DES_OID)
    while start >= 0:
        params = der[start + len(_PBE_SHA1_3DES_OID):]
        if len(params) > 4 and params[0] == 0x30 and params[2] == 0x04:
            salt_end = 4 + params[3]
            if params[salt_end:salt_end + 1] == b"\x02":
                count_length = params[salt_end + 1]
                count = params[salt_end + 2:salt_end + 2 + count_length]
                found.append((params[4:salt_end], int.from_bytes(count, "big")))
        start = der.find(_PBE_SHA1_3DES_OID, start + 1)
    return found


def gpgsm_misderives_3des_key(*, salt: bytes, passphrase: str, iterations: int) -> bool:
    """Whether gpgsm 2.2 derives a wrong key for this salt (RFC 7292 B.2 with its defect).

    The 24-byte key needs a second hash block, so I (salt and passphrase, 64 bytes each as gpgsm
    builds them) is updated once: gpgsm goes wrong when a block of the sum starts with a zero byte.
    """
    bmp = passphrase.encode("utf-16-be") + b"\0\0"
    block_i = (salt * 64)[:64] + (bmp * (64 // len(bmp) + 1))[:64]
    digest = hashlib.sha1(b"\x01" * 64 + block_i).digest()
    for _ in range(iterations - 1):
        digest = hashlib.sha1(digest).digest()
    b_plus_one = int.from_bytes((digest * 4)[:64], "big") + 1
    for offset in (0, 64):
        block = (int.from_bytes(block_i[offset:offset + 64], "big") + b_plus_one) % (1 << 512)
        if block >> 504 == 0:
            return True
    return False


def load_pkcs12(data: bytes, passphrase: str | bytes) -> pkcs12.PKCS12KeyAndCertificates:
    """Parse a bundle (ValueError on a wrong passphrase or a damaged file)."""
    secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    return pkcs12.load_pkcs12(data, secret)
