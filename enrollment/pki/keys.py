"""Subscriber and CA key pairs: generation and (unencrypted) DER round trips."""

from __future__ import annotations

from typing import TypeAlias

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

KEY_TYPES: dict[str, str] = {
    "rsa-3072": "RSA 3072",
    "rsa-4096": "RSA 4096",
    "ec-p256": "ECDSA P-256",
    "ec-p384": "ECDSA P-384",
}

_RSA_SIZES = {"rsa-3072": 3072, "rsa-4096": 4096}
_EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ec-p256": ec.SECP256R1,
    "ec-p384": ec.SECP384R1,
}
_CURVE_NAMES = {"secp256r1": "p256", "secp384r1": "p384", "secp521r1": "p521"}


def generate_private_key(key_type: str) -> PrivateKey:
    if key_type in _RSA_SIZES:
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_SIZES[key_type])
    if key_type in _EC_CURVES:
        return ec.generate_private_key(_EC_CURVES[key_type]())
    raise ValueError(f"unknown key type {key_type!r}; expected one of {', '.join(KEY_TYPES)}")


def private_key_to_der(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 DER: callers encrypt it (CMS escrow, sealed pickup copy)."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key_from_der(der: bytes) -> PrivateKey:
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ValueError(f"unsupported private key type {type(key).__name__}")
    return key


def key_type_of(key: PrivateKey | PublicKey) -> str:
    """Descriptive key type, e.g. "rsa-3072" or "ec-p256" (also for sizes we don't issue)."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"rsa-{key.key_size}"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ec-" + _CURVE_NAMES.get(key.curve.name, key.curve.name)
    raise ValueError(f"unsupported key type {type(key).__name__}")
