"""CA key backends: the only way the rest of the portal reaches a CA private key.

The default keeps the key in a passphrase-encrypted PKCS#8 PEM file; enrollment.pki.pkcs11
implements the same small protocol for a key that stays in an HSM.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol, TypeAlias, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp

from .keys import PrivateKey, PublicKey


class KeyBackendError(Exception):
    """The CA key cannot be used (missing file, wrong passphrase, unsupported key)."""


SignatureHash: TypeAlias = hashes.SHA256 | hashes.SHA384 | hashes.SHA512


def signature_hash_for(key: PrivateKey | PublicKey) -> SignatureHash:
    """Digest matching the key strength, as the SBR signature algorithm table expects."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return hashes.SHA256()
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if isinstance(key.curve, ec.SECP256R1):
            return hashes.SHA256()
        if isinstance(key.curve, ec.SECP384R1):
            return hashes.SHA384()
        if isinstance(key.curve, ec.SECP521R1):
            return hashes.SHA512()
        raise ValueError(f"unsupported curve {key.curve.name}")
    raise ValueError(f"unsupported key type {type(key).__name__}")


@runtime_checkable
class KeyBackend(Protocol):
    def public_key(self) -> PublicKey: ...

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate: ...

    def sign_crl(
        self, builder: x509.CertificateRevocationListBuilder
    ) -> x509.CertificateRevocationList: ...

    def sign_ocsp_response(self, builder: ocsp.OCSPResponseBuilder) -> ocsp.OCSPResponse: ...


class _PrivateKeyBackend(KeyBackend):
    """Signs with a private key object that subclasses provide."""

    def _private_key(self) -> PrivateKey:
        raise NotImplementedError

    def public_key(self) -> PublicKey:
        return self._private_key().public_key()

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        key = self._private_key()
        return builder.sign(key, signature_hash_for(key))

    def sign_crl(
        self, builder: x509.CertificateRevocationListBuilder
    ) -> x509.CertificateRevocationList:
        key = self._private_key()
        return builder.sign(key, signature_hash_for(key))

    def sign_ocsp_response(self, builder: ocsp.OCSPResponseBuilder) -> ocsp.OCSPResponse:
        # The builder names the responder (CA or delegated certificate) whose key this is.
        key = self._private_key()
        return builder.sign(key, signature_hash_for(key))


class InMemoryKeyBackend(_PrivateKeyBackend):
    """Wraps a private key object (tests, freshly created CAs before they are stored)."""

    def __init__(self, key: PrivateKey) -> None:
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise KeyBackendError(f"unsupported CA key type {type(key).__name__}")
        self._key = key

    def _private_key(self) -> PrivateKey:
        return self._key


class EncryptedFileKeyBackend(_PrivateKeyBackend):
    """CA key in a PKCS#8 PEM file encrypted with a passphrase (from the environment)."""

    def __init__(self, *, path: Path | str, passphrase: bytes) -> None:
        self.path = Path(path)
        self._passphrase = passphrase
        self._key: PrivateKey | None = None
        self._lock = threading.Lock()

    def _private_key(self) -> PrivateKey:
        # Lazy: constructing the backend (e.g. at start-up) must not need the file yet.
        with self._lock:
            if self._key is None:
                self._key = self._load()
            return self._key

    def _load(self) -> PrivateKey:
        try:
            pem = self.path.read_bytes()
        except FileNotFoundError:
            raise KeyBackendError(f"the CA key file {self.path} does not exist") from None
        except OSError as exc:
            raise KeyBackendError(f"cannot read the CA key file {self.path}: {exc}") from exc
        try:
            key = serialization.load_pem_private_key(pem, password=self._passphrase)
        except (ValueError, TypeError) as exc:
            # cryptography reports a wrong passphrase and a corrupt file alike.
            raise KeyBackendError(
                f"cannot decrypt the CA key at {self.path}: wrong passphrase?"
            ) from exc
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise KeyBackendError(f"unsupported CA key type {type(key).__name__} in {self.path}")
        return key

    @classmethod
    def store(
        cls, *, path: Path | str, key: PrivateKey, passphrase: bytes
    ) -> EncryptedFileKeyBackend:
        """Write `key` encrypted under `passphrase`; FileExistsError if `path` exists."""
        if not passphrase:
            raise ValueError("a passphrase is required to store the CA key")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # the key directory: ours alone
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
        # O_EXCL: never overwrite an existing CA key; mode 0600 from creation, no chmod race.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        os.chmod(path, 0o600)  # the umask may have removed bits but never adds; be explicit
        backend = cls(path=path, passphrase=passphrase)
        backend._key = key
        return backend
