"""The public revocation endpoints: the CA certificates and CRLs under /pki/, OCSP under /ocsp/.

OCSP (RFC 6960 appendix A, RFC 5019 caching): answers are always HTTP 200 with an
OCSPResponse; errors (malformed request, unknown CA) are OCSP statuses, which is what OCSP
clients understand. Anyone may ask (that is the point of a CRL and of OCSP).
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp as x509_ocsp
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from core.exceptions import PortalError
from core.outage import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS, log_outage

from ..models import CertificateAuthority
from ..pki.ocsp import MAX_REQUEST_SIZE
from .ocsp import ocsp_respond
from .services import crl_current


@require_GET
def ca_certificate(request, slug: str):
    ca = get_object_or_404(CertificateAuthority.objects.defer("crl_der"), slug=slug)
    return HttpResponse(bytes(ca.certificate_der), content_type="application/pkix-cert")


@require_GET
def ca_crl(request, slug: str):
    ca = get_object_or_404(CertificateAuthority.objects.defer("crl_der"), slug=slug)  # crl_current reads it
    try:
        crl = crl_current(ca=ca)
    except PortalError as exc:
        return HttpResponse(exc.message, status=503, content_type="text/plain")
    response = HttpResponse(crl, content_type="application/pkix-crl")
    response["Cache-Control"] = "public, max-age=3600"
    return response


CONTENT_TYPE = "application/ocsp-response"
# The answer while the database is unreachable: an OCSPResponse with status tryLater (no body to sign).
TRY_LATER = x509_ocsp.OCSPResponseBuilder.build_unsuccessful(x509_ocsp.OCSPResponseStatus.TRY_LATER).public_bytes(
    Encoding.DER
)


def _decode_get(encoded: str) -> bytes:
    """The DER request from the URL: base64 (Django has undone the URL encoding already).

    Tolerates what clients send in practice: missing padding, the URL-safe alphabet.
    Undecodable input becomes b"", which the service answers with malformedRequest.
    """
    text = "".join(encoded.split()).replace("-", "+").replace("_", "/")
    if len(text) > 2 * MAX_REQUEST_SIZE:
        return b""
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""


def _posted(request) -> bytes:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return b""
    return request.body if 0 < length <= MAX_REQUEST_SIZE else b""


@csrf_exempt  # OCSP clients post DER, with no session and no form
@require_http_methods(["GET", "HEAD", "POST"])
def ocsp(request, slug: str, encoded: str = ""):
    """Public: anyone may ask for the status of a certificate (that is the point of OCSP)."""
    der = _posted(request) if request.method == "POST" else _decode_get(encoded)
    try:
        body = ocsp_respond(ca_slug=slug, request_der=der)
    except DATABASE_UNAVAILABLE as exc:
        # RFC 6960 4.2.1: tryLater ("the service exists but is temporarily unable to respond"), unsigned.
        log_outage(request, exc)
        response = HttpResponse(TRY_LATER, content_type=CONTENT_TYPE)
        response["Cache-Control"] = "no-store"
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    response = HttpResponse(body, content_type=CONTENT_TYPE)
    parsed = x509_ocsp.load_der_ocsp_response(body) if request.method != "POST" else None
    if parsed is not None and parsed.response_status is x509_ocsp.OCSPResponseStatus.SUCCESSFUL:
        # RFC 5019 6.2: caches may keep a GET answer until its nextUpdate (a POST's, nobody).
        this_update, next_update = parsed.this_update_utc, parsed.next_update_utc
        max_age = max(0, int((next_update - timezone.now()).total_seconds()))
        response["Cache-Control"] = f"public, max-age={max_age}, no-transform, must-revalidate"
        response["Expires"] = http_date(next_update.timestamp())
        response["Last-Modified"] = http_date(this_update.timestamp())
        response["ETag"] = f'"{hashlib.sha256(body).hexdigest()[:40]}"'
    else:
        response["Cache-Control"] = "no-store"
    return response
