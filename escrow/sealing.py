"""Sealed "pickup copies": a subscriber key kept for the first download, under a KEK.

AES-256-GCM with a random 96-bit nonce. The associated data binds a sealed blob to its
record (e.g. certificate serial), so a copy pasted into another row does not open.
Format: version byte (1) || nonce (12) || ciphertext+tag.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = 1
_NONCE_LENGTH = 12
_TAG_LENGTH = 16
_KEK_LENGTH = 32
_KDF_INFO = b"smime-portal pickup kek v1"


class SealError(Exception):
    """The sealed data cannot be opened: tampered, wrong KEK or wrong associated data."""


def derive_kek(secret: str | bytes) -> bytes:
    """A 32-byte KEK from an environment secret (high-entropy string; HKDF is no password hash)."""
    material = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not material:
        raise ValueError("the pickup key secret is empty")
    return HKDF(algorithm=hashes.SHA256(), length=_KEK_LENGTH, salt=None, info=_KDF_INFO).derive(material)


def _aead(kek: bytes) -> AESGCM:
    if len(kek) != _KEK_LENGTH:
        raise ValueError(f"the KEK must be {_KEK_LENGTH} bytes (use derive_kek)")
    return AESGCM(kek)


def seal(*, plaintext: bytes, kek: bytes, associated_data: bytes) -> bytes:
    nonce = os.urandom(_NONCE_LENGTH)
    header = bytes([VERSION])
    # The version byte is authenticated too, so it cannot be swapped for another format.
    ciphertext = _aead(kek).encrypt(nonce, plaintext, header + associated_data)
    return header + nonce + ciphertext


def unseal(*, sealed: bytes, kek: bytes, associated_data: bytes) -> bytes:
    aead = _aead(kek)
    if len(sealed) < 1 + _NONCE_LENGTH + _TAG_LENGTH:
        raise SealError("the sealed data is truncated")
    if sealed[0] != VERSION:
        raise SealError(f"unknown sealed data version {sealed[0]}")
    nonce, ciphertext = sealed[1 : 1 + _NONCE_LENGTH], sealed[1 + _NONCE_LENGTH :]
    try:
        return aead.decrypt(nonce, ciphertext, sealed[:1] + associated_data)
    except InvalidTag:
        raise SealError("cannot open the sealed data: tampered, wrong key or wrong associated data") from None
