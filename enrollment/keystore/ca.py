"""The bridge from CA rows to their key backends; with keystore.ocsp, the only place that reads the CA passphrase.

Also the only place that reads the PKCS#11 module path and PIN (PORTAL_PKCS11_*).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509 import ocsp
from django.conf import settings

from core.exceptions import ConfigurationError

from ..models import CertificateAuthority, KeyBackendName
from ..pki.backends import EncryptedFileKeyBackend, KeyBackend, KeyBackendError
from ..pki.keys import PublicKey
from ..pki.pkcs11 import Pkcs11KeyBackend, Pkcs11KeyReference, pkcs11_generate_ca_key

_backends: dict[tuple[str, ...], KeyBackend] = {}
T = TypeVar("T")


def key_backend_for(ca: CertificateAuthority) -> KeyBackend:
    if ca.key_backend == KeyBackendName.PKCS11:
        return _pkcs11_backend_for(ca)
    if ca.key_backend != KeyBackendName.FILE:
        raise ConfigurationError(f"The CA {ca} has no usable private key here (backend {ca.key_backend!r}).")
    cache_key = (ca.key_reference, settings.PORTAL_CA_PASSPHRASE)
    backend = _backends.get(cache_key)
    if backend is None:
        backend = EncryptedFileKeyBackend(path=ca.key_reference, passphrase=settings.PORTAL_CA_PASSPHRASE.encode())
        try:
            backend.public_key()
        except KeyBackendError as exc:
            raise ConfigurationError(str(exc)) from None
        _backends[cache_key] = backend
    return backend


def _pkcs11_backend_for(ca: CertificateAuthority) -> KeyBackend:
    # The module and PIN are the host's (settings); the CA row names token and key (its URI).
    cache_key = ("pkcs11", ca.key_reference, settings.PORTAL_PKCS11_MODULE, settings.PORTAL_PKCS11_PIN)
    backend = _backends.get(cache_key)
    if backend is None:
        try:
            reference = Pkcs11KeyReference.from_uri(ca.key_reference)
        except ValueError as exc:
            raise ConfigurationError(f"The CA {ca}: {exc}") from None
        backend = Pkcs11KeyBackend(
            module_path=settings.PORTAL_PKCS11_MODULE,
            token_label=reference.token_label,
            key_label=reference.key_label,
            pin=settings.PORTAL_PKCS11_PIN,
        )
        try:
            public_key = backend.public_key()
        except KeyBackendError as exc:
            raise ConfigurationError(f"The CA {ca}: {exc}") from None
        if _spki(public_key) != _spki(ca.certificate.public_key()):
            raise ConfigurationError(f"The CA {ca}: the key {reference.uri} is not the key of its certificate.")
        backend = _backends[cache_key] = HsmFailuresReported(backend, ca_name=str(ca))
    return backend


class HsmFailuresReported(KeyBackend):
    """A token backend whose signing failures (HSM unreachable, PIN changed) are ConfigurationErrors.

    A file backend that loaded its key cannot fail later; a token can, and the workflow reports
    a PortalError's message (a failed request's reason, an OCSP internalError that is logged).
    """

    def __init__(self, backend: Pkcs11KeyBackend, *, ca_name: str) -> None:
        self.backend = backend
        self._ca_name = ca_name

    def _call(self, method: Callable[..., T], *args: object) -> T:
        try:
            return method(*args)
        except KeyBackendError as exc:
            raise ConfigurationError(f"The CA {self._ca_name} cannot sign: {exc}") from exc

    def public_key(self) -> PublicKey:
        return self._call(self.backend.public_key)

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        return self._call(self.backend.sign_certificate, builder)

    def sign_crl(self, builder: x509.CertificateRevocationListBuilder) -> x509.CertificateRevocationList:
        return self._call(self.backend.sign_crl, builder)

    def sign_ocsp_response(self, builder: ocsp.OCSPResponseBuilder) -> ocsp.OCSPResponse:
        return self._call(self.backend.sign_ocsp_response, builder)

    def sign_csr(self, builder: x509.CertificateSigningRequestBuilder) -> x509.CertificateSigningRequest:
        return self._call(self.backend.sign_csr, builder)


def store_ca_key(*, slug: str, key) -> str:
    # A fresh name each time: a key file left by a rolled-back attempt never blocks the next.
    path = Path(settings.PORTAL_CA_KEY_DIR) / f"{slug}-{secrets.token_hex(4)}.key.pem"
    EncryptedFileKeyBackend.store(path=path, key=key, passphrase=settings.PORTAL_CA_PASSPHRASE.encode())
    return str(path)


def _pkcs11_token_label() -> str:
    token_label = settings.PORTAL_PKCS11_TOKEN_LABEL
    if not token_label:
        raise ConfigurationError("PORTAL_PKCS11_TOKEN_LABEL must name the token that holds the CA keys.")
    return token_label


def _pkcs11_backend(reference: Pkcs11KeyReference) -> Pkcs11KeyBackend:
    return Pkcs11KeyBackend(
        module_path=settings.PORTAL_PKCS11_MODULE,
        token_label=reference.token_label,
        key_label=reference.key_label,
        pin=settings.PORTAL_PKCS11_PIN,
    )


def pkcs11_ca_key_create(*, key_label: str, key_type: str) -> tuple[str, KeyBackend, PublicKey]:
    """Generate a CA key in the PORTAL_PKCS11_TOKEN_LABEL token: (key reference, backend, public key)."""
    reference = Pkcs11KeyReference(_pkcs11_token_label(), key_label)
    try:
        public_key = pkcs11_generate_ca_key(
            module_path=settings.PORTAL_PKCS11_MODULE,
            token_label=reference.token_label,
            key_label=reference.key_label,
            pin=settings.PORTAL_PKCS11_PIN,
            key_type=key_type,
        )
    except KeyBackendError as exc:
        raise ConfigurationError(str(exc)) from None
    return reference.uri, HsmFailuresReported(_pkcs11_backend(reference), ca_name=key_label), public_key


def pkcs11_ca_key_adopt(*, key_label: str) -> tuple[str, KeyBackend, PublicKey]:
    """A CA key that is in the PORTAL_PKCS11_TOKEN_LABEL token already (made by `init_ca
    --csr-out` or by the HSM's own tools): (key reference, backend, public key).

    Refused (ConfigurationError) when no such key pair is there or the token would let the
    private key be exported (not sensitive, or extractable).
    """
    reference = Pkcs11KeyReference(_pkcs11_token_label(), key_label)
    backend = _pkcs11_backend(reference)
    try:
        public_key = backend.public_key()
    except KeyBackendError as exc:
        raise ConfigurationError(str(exc)) from None
    return reference.uri, HsmFailuresReported(backend, ca_name=key_label), public_key


def _spki(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
