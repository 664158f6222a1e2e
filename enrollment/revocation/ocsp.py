"""The OCSP responder's Django side: status lookup and who signs.

`ocsp_respond` answers one DER request for the CA named in the URL. The crypto is in
`enrollment.pki.ocsp`; this module adds the database lookup and the signer: with
`PORTAL_OCSP_SIGNER = "delegated"` (default) a short-lived responder certificate from
`enrollment.keystore.ocsp`, with `"ca"` the CA key.

One query per answer (issue 13: the ORM's two queries were half of an answer's time). Each
process keeps the CA's row (parsed certificate, key backend and reference) per slug; the
one query reads the certificate's status together with the CA's certificate and key columns,
and an answer made with a cached CA that no longer matches them is made again from the row.
So a CA whose certificate or key changes is answered for with the new one from the next
request on, in every process. The SQL is compiled by the ORM once per process, not per answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509 import ocsp as x509_ocsp
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import FilteredRelation, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.exceptions import ConfigurationError
from escrow.models import KeyRecoveryAgent

from ..keystore.ca import key_backend_for
from ..keystore.ocsp import ocsp_responder_current
from ..models import Certificate, CertificateAuthority, KeyBackendName
from ..pki import ocsp as pki_ocsp
from ..pki.backends import KeyBackend, KeyBackendError
from ..pki.serials import serial_text

logger = logging.getLogger(__name__)

UNAUTHORIZED = pki_ocsp.unsuccessful_response(x509_ocsp.OCSPResponseStatus.UNAUTHORIZED)


def ocsp_response_validity() -> timedelta:
    # nextUpdate = thisUpdate + validity; the SBR's interval counts both ends (+1 second).
    return timedelta(hours=settings.PORTAL_OCSP_VALIDITY_HOURS) - timedelta(seconds=1)


@dataclass(frozen=True)
class _Authority:
    """A CA row as the responder needs it (without its CRL), kept per process by slug."""

    ca: CertificateAuthority

    @property
    def usable(self) -> bool:
        # e.g. an imported root without its key: nobody here can sign for it
        return self.ca.key_backend != KeyBackendName.NONE and bool(self.ca.key_reference)

    @property
    def identity(self) -> tuple:
        return (self.ca.pk, bytes(self.ca.certificate_der), self.ca.key_backend, self.ca.key_reference)


_authorities: dict[str, _Authority] = {}


class _StaleAuthority(Exception):
    """The cached CA is not the row any more: answer again from the row."""


def ocsp_authority_cache_clear() -> None:
    """Forget the cached CAs (tests; the cache also notices a changed row by itself)."""
    _authorities.clear()


def ocsp_respond(*, ca_slug: str, request_der: bytes, now: datetime | None = None) -> bytes:
    """The DER OCSPResponse for a request to /ocsp/<ca_slug>; never raises for bad input.

    Malformed requests get `malformedRequest`, requests for a CA we don't serve (unknown
    slug, no usable key, other issuer hashes) `unauthorized`, and a responder that cannot
    sign (key file or passphrase problem) `internalError`, logged.
    """
    now = now or timezone.now()
    if not isinstance(ca_slug, str):
        return _answer(None, request_der=request_der, now=now, cached=False)
    authority = _authorities.get(ca_slug)
    if authority is not None:
        try:
            return _answer(authority, request_der=request_der, now=now, cached=True)
        except _StaleAuthority:
            pass
    return _answer(_authority_load(ca_slug), request_der=request_der, now=now, cached=False)


def _authority_load(slug: str) -> _Authority | None:
    # Not the stored CRL (megabytes with many revoked).
    ca = next(iter(CertificateAuthority.objects.defer("crl_der").filter(slug=slug).order_by()[:1]), None)
    if ca is None:
        _authorities.pop(slug, None)
        return None
    authority = _authorities[slug] = _Authority(ca)
    return authority


def _answer(authority: _Authority | None, *, request_der: bytes, now: datetime, cached: bool) -> bytes:
    ca = authority.ca if authority is not None and authority.usable else None
    try:
        body = pki_ocsp.respond(
            request_der=request_der,
            issuer_certificate=ca.certificate if ca is not None else None,
            lookup=lambda serial: _certificate_status(authority=authority, serial_number=serial, cached=cached),
            responder=lambda: _signer(ca=ca, now=now),
            now=now,
            validity=ocsp_response_validity(),
        )
    except (ConfigurationError, KeyBackendError, OSError) as exc:
        logger.error("OCSP responder for %s cannot sign: %s", ca.slug if ca else "?", exc)
        return pki_ocsp.unsuccessful_response(x509_ocsp.OCSPResponseStatus.INTERNAL_ERROR)
    if cached and body == UNAUTHORIZED:
        raise _StaleAuthority  # the CA may have a new certificate (or key) since it was cached
    return body


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


def _certificate_status(*, authority: _Authority, serial_number: int, cached: bool) -> pki_ocsp.StatusInfo:
    row = _status_row(slug=authority.ca.slug, serial=serial_text(serial_number))
    if row is None or (cached and row[:4] != authority.identity):
        if cached:
            raise _StaleAuthority
        return pki_ocsp.UNKNOWN  # the CA row went away since it was read, a moment ago
    status, revoked_at, reason = row[4:]
    ca = authority.ca
    if status is not None:
        revoked_at = _aware(revoked_at)
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


# The one query of an answer, compiled by the ORM once per process and database: the CA row's
# identity (what the cache compares) and the certificate's status, NULL when it has no row.
_SLUG, _SERIAL = "<ocsp slug>", "<ocsp serial>"
_status_sql: dict[str, tuple[str, tuple[str, ...]]] = {}


def _status_query(alias: str) -> tuple[str, tuple[str, ...]]:
    compiled = _status_sql.get(alias)
    if compiled is None:
        queryset = (
            CertificateAuthority.objects.filter(slug=_SLUG)
            .annotate(match=FilteredRelation("certificates", condition=Q(certificates__serial=_SERIAL)))
            .values_list(
                "pk", "certificate_der", "key_backend", "key_reference",
                "match__status", "match__revoked_at", "match__revocation_reason",
            )
            .order_by()[:1]
        )  # fmt: skip
        sql, params = queryset.query.get_compiler(using=alias).as_sql()
        if sorted(params) != sorted((_SLUG, _SERIAL)):
            raise RuntimeError(f"unexpected parameters in the OCSP status query: {params!r}")
        compiled = _status_sql[alias] = (sql, tuple(params))
    return compiled


def _status_row(*, slug: str, serial: str) -> tuple | None:
    connection = connections[DEFAULT_DB_ALIAS]
    sql, params = _status_query(DEFAULT_DB_ALIAS)
    values = {_SLUG: slug, _SERIAL: serial}
    with connection.cursor() as cursor:
        cursor.execute(sql, [values[param] for param in params])
        row = cursor.fetchone()
    if row is None:
        return None
    pk, certificate_der, *rest = row
    return (pk, bytes(certificate_der), *rest)


def _aware(value) -> datetime | None:
    # What the ORM's converters do for a DateTimeField: SQLite gives naive UTC (or text).
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


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
