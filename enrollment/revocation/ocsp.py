"""The OCSP responder's Django side: status lookup and who signs.

`ocsp_respond` answers one DER request for the CA named in the URL. The crypto is in
`enrollment.pki.ocsp`; this module adds the database lookup (one indexed query by issuer
and serial) and the signer: with `PORTAL_OCSP_SIGNER = "delegated"` (default) a
short-lived responder certificate from `enrollment.keystore.ocsp`, with `"ca"` the CA key.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509 import ocsp as x509_ocsp
from django.conf import settings
from django.utils import timezone

from core.exceptions import ConfigurationError
from escrow.models import KeyRecoveryAgent

from ..keystore.ca import key_backend_for
from ..keystore.ocsp import ocsp_responder_current
from ..models import Certificate, CertificateAuthority, KeyBackendName
from ..pki import ocsp as pki_ocsp
from ..pki.backends import KeyBackend, KeyBackendError
from ..pki.serials import serial_text

logger = logging.getLogger(__name__)


def ocsp_response_validity() -> timedelta:
    # nextUpdate = thisUpdate + validity; the SBR's interval counts both ends (+1 second).
    return timedelta(hours=settings.PORTAL_OCSP_VALIDITY_HOURS) - timedelta(seconds=1)


def ocsp_respond(*, ca_slug: str, request_der: bytes, now: datetime | None = None) -> bytes:
    """The DER OCSPResponse for a request to /ocsp/<ca_slug>; never raises for bad input.

    Malformed requests get `malformedRequest`, requests for a CA we don't serve (unknown
    slug, no usable key, other issuer hashes) `unauthorized`, and a responder that cannot
    sign (key file or passphrase problem) `internalError`, logged.
    """
    # Not the stored CRL (megabytes with many revoked): an answer reads one certificate row.
    ca = _one(CertificateAuthority.objects.defer("crl_der").filter(slug=ca_slug)) if isinstance(ca_slug, str) else None
    if ca is not None and (ca.key_backend == KeyBackendName.NONE or not ca.key_reference):
        ca = None  # e.g. an imported root without its key: nobody here can sign for it
    now = now or timezone.now()
    try:
        return pki_ocsp.respond(
            request_der=request_der,
            issuer_certificate=ca.certificate if ca is not None else None,
            lookup=lambda serial: _certificate_status(ca=ca, serial_number=serial),
            responder=lambda: _signer(ca=ca, now=now),
            now=now,
            validity=ocsp_response_validity(),
        )
    except (ConfigurationError, KeyBackendError, OSError) as exc:
        logger.error("OCSP responder for %s cannot sign: %s", ca_slug, exc)
        return pki_ocsp.unsuccessful_response(x509_ocsp.OCSPResponseStatus.INTERNAL_ERROR)


def _one(queryset):
    # The row of a unique key, or None: without first()'s ORDER BY (compiled on every answer, for nothing).
    return next(iter(queryset.order_by()[:1]), None)


def _reason(name: str) -> x509.ReasonFlags | None:
    # Stored as a ReasonFlags member name ("key_compromise"); tolerate the value spelling too.
    if not name:
        return None
    if name in x509.ReasonFlags.__members__:
        return x509.ReasonFlags[name]
    try:
        return x509.ReasonFlags(name)
    except ValueError:
        logger.warning("unknown revocation reason %r; answering without a reason", name)
        return None


def _certificate_status(*, ca: CertificateAuthority, serial_number: int) -> pki_ocsp.StatusInfo:
    row = _one(
        Certificate.objects.filter(issuer=ca, serial=serial_text(serial_number)).values_list(
            "status", "revoked_at", "revocation_reason"
        )
    )
    if row is not None:
        status, revoked_at, reason = row
        if status == Certificate.Status.REVOKED or revoked_at is not None:
            # Revocation is final: an expired certificate that was revoked stays revoked.
            return pki_ocsp.StatusInfo(
                pki_ocsp.CertStatus.REVOKED,
                revocation_time=revoked_at or timezone.now(),
                revocation_reason=_reason(reason),
            )
        return pki_ocsp.GOOD
    if _issued_ca_or_agent(ca=ca, serial_number=serial_number):
        return pki_ocsp.GOOD
    # Never issued by this CA (as far as the portal knows): not "good" (SBR 4.9.9).
    return pki_ocsp.UNKNOWN


def _issued_ca_or_agent(*, ca: CertificateAuthority, serial_number: int) -> bool:
    """Certificates the CA signed that are no Certificate rows: sub-CAs and recovery agents."""
    candidates = list(CertificateAuthority.objects.filter(parent=ca).values_list("certificate_der", flat=True))
    candidates += KeyRecoveryAgent.objects.values_list("certificate_der", flat=True)
    for der in candidates:
        certificate = x509.load_der_x509_certificate(bytes(der))
        if certificate.serial_number == serial_number and certificate.issuer == ca.certificate.subject:
            try:
                certificate.verify_directly_issued_by(ca.certificate)
            except (ValueError, TypeError, InvalidSignature):  # a namesake from another CA key
                continue
            return True
    return False


def _signer(*, ca: CertificateAuthority, now: datetime) -> tuple[pki_ocsp.Responder, KeyBackend]:
    if settings.PORTAL_OCSP_SIGNER == "ca":
        return pki_ocsp.Responder(ca.certificate, delegated=False), key_backend_for(ca)
    certificate, backend = ocsp_responder_current(ca=ca, now=now)
    return pki_ocsp.Responder(certificate, delegated=True), backend
