"""The delegated OCSP responders' keys and certificates (PORTAL_OCSP_SIGNER = "delegated").

A short-lived OCSP responder certificate (id-kp-OCSPSigning, id-pkix-ocsp-nocheck) that the
CA issues on first use and again well before it expires. Its key is stored like a CA key,
encrypted with PORTAL_CA_PASSPHRASE under PORTAL_CA_KEY_DIR/ocsp/<ca>/<serial>.key.pem, the
certificate beside it as <serial>.crt.pem. The CA key signs only once per responder lifetime.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import threading
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record

from ..models import CertificateAuthority
from ..pki import ocsp as pki_ocsp
from ..pki.backends import EncryptedFileKeyBackend, KeyBackend, KeyBackendError
from ..pki.serials import serial_text
from .ca import key_backend_for

logger = logging.getLogger(__name__)

_cache: dict[tuple, tuple[x509.Certificate, KeyBackend]] = {}
_cache_lock = threading.Lock()


def _renewal_margin() -> timedelta:
    # Renew with a third of the lifetime left, and never sign a response that outlives
    # the certificate that verifies it.
    lifetime = timedelta(days=settings.PORTAL_OCSP_RESPONDER_VALIDITY_DAYS)
    return max(lifetime / 3, timedelta(hours=settings.PORTAL_OCSP_VALIDITY_HOURS) + timedelta(hours=1))


def _due(certificate: x509.Certificate, ca: CertificateAuthority, now: datetime) -> bool:
    remaining = certificate.not_valid_after_utc - now
    if remaining <= timedelta(0) or certificate.not_valid_before_utc > now:
        return True
    if certificate.not_valid_after_utc >= ca.certificate.not_valid_after_utc:
        return False  # capped at the CA's own end: a new one could live no longer
    return remaining < _renewal_margin()


def responder_directory(ca: CertificateAuthority) -> Path:
    return Path(settings.PORTAL_CA_KEY_DIR) / "ocsp" / ca.slug


def ocsp_responder_current(
    *, ca: CertificateAuthority, now: datetime | None = None
) -> tuple[x509.Certificate, KeyBackend]:
    """The CA's delegated responder certificate and key backend; issues one when due."""
    now = now or timezone.now()
    passphrase = settings.PORTAL_CA_PASSPHRASE
    cache_key = (ca.slug, bytes(ca.certificate_der), str(settings.PORTAL_CA_KEY_DIR), passphrase)
    cached = _cache.get(cache_key)
    if cached is not None and not _due(cached[0], ca, now):
        return cached
    with _cache_lock:
        cached = _cache.get(cache_key)
        if cached is None or _due(cached[0], ca, now):
            directory = responder_directory(ca)
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            # One issuer across processes too (several web workers start at once).
            with open(directory / ".lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    cached = _load_latest(ca=ca, directory=directory, passphrase=passphrase.encode(), now=now)
                    if cached is None or _due(cached[0], ca, now):
                        cached = ocsp_responder_issue(ca=ca, now=now)
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
            _cache[cache_key] = cached
    return cached


def _load_latest(
    *, ca: CertificateAuthority, directory: Path, passphrase: bytes, now: datetime
) -> tuple[x509.Certificate, KeyBackend] | None:
    best = None
    for path in directory.glob("*.crt.pem"):
        try:
            certificate = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError):
            continue
        key_path = path.with_name(path.name.removesuffix(".crt.pem") + ".key.pem")
        if not key_path.exists() or certificate.not_valid_after_utc <= now:
            continue
        if not pki_ocsp.is_responder_for(certificate, ca.certificate):
            continue
        if best is None or certificate.not_valid_after_utc > best[0].not_valid_after_utc:
            best = (certificate, key_path)
    if best is None:
        return None
    certificate, key_path = best
    backend = EncryptedFileKeyBackend(path=key_path, passphrase=passphrase)
    try:
        matches = _spki(backend.public_key()) == _spki(certificate.public_key())
    except KeyBackendError as exc:  # e.g. the passphrase was rotated: issue a new one
        logger.warning("OCSP responder key %s unusable (%s); issuing a new responder", key_path, exc)
        return None
    return (certificate, backend) if matches else None


def _spki(public_key) -> bytes:
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@transaction.atomic
def ocsp_responder_issue(
    *, ca: CertificateAuthority, now: datetime | None = None
) -> tuple[x509.Certificate, KeyBackend]:
    """Issue a new delegated responder certificate for `ca` and store key and certificate."""
    now = now or timezone.now()
    directory = responder_directory(ca)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = pki_ocsp.responder_key_like(ca.certificate.public_key())
    builder = pki_ocsp.responder_certificate_builder(
        public_key=key.public_key(),
        issuer_certificate=ca.certificate,
        not_before=now.replace(microsecond=0) - timedelta(minutes=5),
        validity_days=settings.PORTAL_OCSP_RESPONDER_VALIDITY_DAYS,
    )
    certificate = key_backend_for(ca).sign_certificate(builder)
    stem = serial_text(certificate.serial_number)
    # The key first (encrypted, 0600, never overwritten), then the certificate atomically:
    # a reader that sees a certificate always finds its key.
    backend = EncryptedFileKeyBackend.store(
        path=directory / f"{stem}.key.pem", key=key, passphrase=settings.PORTAL_CA_PASSPHRASE.encode()
    )
    fd, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(certificate.public_bytes(Encoding.PEM))
    os.replace(temporary, directory / f"{stem}.crt.pem")
    audit_record(
        action=AuditAction.OCSP_RESPONDER_ISSUED,
        obj=ca,
        details={"serial": stem, "not_after": certificate.not_valid_after_utc.isoformat()},
    )
    _remove_expired(directory, now)
    return certificate, backend


def _remove_expired(directory: Path, now: datetime) -> None:
    for path in directory.glob("*.crt.pem"):
        try:
            expired = x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc < now - timedelta(days=1)
        except (OSError, ValueError):
            continue
        if expired:
            path.with_name(path.name.removesuffix(".crt.pem") + ".key.pem").unlink(missing_ok=True)
            path.unlink(missing_ok=True)


def ocsp_responder_cache_clear() -> None:
    """Forget the cached responders (tests; after replacing key files by hand)."""
    with _cache_lock:
        _cache.clear()
