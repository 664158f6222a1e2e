"""The bridge from CA rows to their key backends; with keystore.ocsp, the only place that reads the CA passphrase."""

from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings

from core.exceptions import ConfigurationError

from ..models import CertificateAuthority, KeyBackendName
from ..pki.backends import EncryptedFileKeyBackend, KeyBackend, KeyBackendError

_backends: dict[tuple[str, str], KeyBackend] = {}


def key_backend_for(ca: CertificateAuthority) -> KeyBackend:
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


def store_ca_key(*, slug: str, key) -> str:
    # A fresh name each time: a key file left by a rolled-back attempt never blocks the next.
    path = Path(settings.PORTAL_CA_KEY_DIR) / f"{slug}-{secrets.token_hex(4)}.key.pem"
    EncryptedFileKeyBackend.store(path=path, key=key, passphrase=settings.PORTAL_CA_PASSPHRASE.encode())
    return str(path)
