"""OCSP ahead of the middleware stack (portal/wsgi.py OcspFastPath) and the responder's CA cache.

The fast path must answer as the full stack does (status, body shape, every header but the
ones only a session or a form needs), hand everything else to Django, and read the database
once per answer; the per-process CA cache must follow a CA row that changes.
"""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from django.core import signals
from django.db import close_old_connections, connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from enrollment.keystore.ocsp import ocsp_responder_cache_clear
from enrollment.models import CertificateAuthority, KeyBackendName
from enrollment.revocation.ocsp import ocsp_authority_cache_clear, ocsp_respond

HOST = "testserver"


@pytest.fixture(autouse=True)
def responder_dir(settings, tmp_path):
    settings.PORTAL_CA_KEY_DIR = tmp_path / "ca-keys"
    settings.ALLOWED_HOSTS = [HOST]
    ocsp_responder_cache_clear()
    ocsp_authority_cache_clear()
    yield
    ocsp_responder_cache_clear()
    ocsp_authority_cache_clear()


@pytest.fixture
def fast_path(settings):
    """The fast path over a fallback that records what it was given; kept on the test transaction."""
    from portal.wsgi import OcspFastPath

    fallen_back = []

    def fallback(environ, start_response):
        fallen_back.append(environ["PATH_INFO"])
        start_response("299 Fallback", [])
        return [b""]

    app = OcspFastPath(fallback, middleware=list(settings.MIDDLEWARE))
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield app, fallen_back
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def call(app, request) -> tuple[int, dict[str, str], bytes]:
    started = {}

    def start_response(status, headers):
        started["status"], started["headers"] = int(status.split()[0]), dict(headers)

    result = app(request.environ, start_response)
    try:
        body = b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    return started["status"], started["headers"], body


def request_der(certificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1())
    return builder.build().public_bytes(Encoding.DER)


def post(der: bytes, *, slug: str = "issuing-ca", **extra):
    return RequestFactory().post(f"/ocsp/{slug}", der, content_type="application/ocsp-request", **extra)


def get(der: bytes, *, slug: str = "issuing-ca"):
    import base64
    import urllib.parse

    return RequestFactory().get(f"/ocsp/{slug}/{urllib.parse.quote(base64.b64encode(der).decode(), safe='')}")


def without_dates(headers: dict[str, str]) -> dict[str, str]:
    # An answer's own times (thisUpdate, Expires, the ETag over the signed body) differ per answer.
    return {
        name: value
        for name, value in headers.items()
        if name not in ("Expires", "Last-Modified", "ETag", "Cache-Control")
    }


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_the_fast_path_answers_as_the_full_stack(fast_path, client, pki, issued, method):
    app, fallen_back = fast_path
    der = request_der(issued.x509, pki["issuing"].certificate)
    request = post(der) if method == "POST" else get(der)
    status, headers, body = call(app, request)
    full = (
        client.post(request.path, der, content_type="application/ocsp-request")
        if method == "POST"
        else client.get(request.path)
    )

    assert status == full.status_code == 200 and not fallen_back
    answer = ocsp.load_der_ocsp_response(body)
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    full_headers = dict(full.items())
    # The full stack's session middleware says "Vary: Cookie", which only keeps caches from sharing answers.
    full_headers.pop("Vary", None)
    assert without_dates(headers) == without_dates(full_headers)
    for name in ("X-Content-Type-Options", "Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"):
        assert name in headers, (name, headers)
    if method == "POST":
        assert headers["Cache-Control"] == full_headers["Cache-Control"] == "no-store"
    else:  # RFC 5019 6.2
        assert headers["Cache-Control"].startswith("public, max-age=") and "must-revalidate" in headers["Cache-Control"]
        assert {"Expires", "Last-Modified", "ETag"} <= set(headers)
    assert "Set-Cookie" not in headers and "Vary" not in headers  # no session read, none sent


@pytest.mark.parametrize("body", [b"", b"\x30\x00junk", b"x" * 20_000])
def test_a_malformed_request_is_an_ocsp_error_not_an_http_one(fast_path, pki, body):
    app, _ = fast_path
    status, headers, answer = call(app, post(body))
    assert status == 200 and headers["Content-Type"] == "application/ocsp-response"
    assert headers["Cache-Control"] == "no-store"
    assert ocsp.load_der_ocsp_response(answer).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_other_addresses_go_to_django(fast_path, pki):
    app, fallen_back = fast_path
    for path in ("/", "/pki/issuing-ca.crl", "/ocsp/", "/ocsp/not a slug", "/api/v1/certificates/"):
        status, _, _ = call(app, RequestFactory().get(path))
        assert status == 299, path
    assert fallen_back == ["/", "/pki/issuing-ca.crl", "/ocsp/", "/ocsp/not a slug", "/api/v1/certificates/"]


def test_a_host_not_allowed_is_refused_as_by_django(fast_path, pki, issued):
    app, _ = fast_path
    status, _, _ = call(app, post(request_der(issued.x509, pki["issuing"].certificate), HTTP_HOST="evil.example"))
    assert status == 400


def test_other_methods_are_refused(fast_path, pki):
    app, fallen_back = fast_path
    status, headers, _ = call(app, RequestFactory().put("/ocsp/issuing-ca", b"x"))
    assert status == 405 and "POST" in headers["Allow"] and not fallen_back


def test_an_answer_reads_the_database_once(fast_path, pki, issued):
    app, _ = fast_path
    der = request_der(issued.x509, pki["issuing"].certificate)
    call(app, post(der))  # the responder certificate is issued, the CA cached
    with CaptureQueriesContext(connection) as queries:
        status, _, body = call(app, post(der))
    assert status == 200 and ocsp.load_der_ocsp_response(body).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert len(queries) == 1, [query["sql"] for query in queries.captured_queries]


def ask(slug: str, certificate: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPResponse:
    return ocsp.load_der_ocsp_response(ocsp_respond(ca_slug=slug, request_der=request_der(certificate, issuer)))


def test_the_cached_ca_follows_a_revocation_at_once(pki, issued):
    from enrollment.revocation.services import certificate_revoke

    assert ask("issuing-ca", issued.x509, pki["issuing"].certificate).certificate_status is ocsp.OCSPCertStatus.GOOD
    certificate_revoke(serial=issued.serial, actor=None, reason="key_compromise")
    answer = ask("issuing-ca", issued.x509, pki["issuing"].certificate)
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason is x509.ReasonFlags.key_compromise and answer.revocation_time_utc is not None


def test_the_cached_ca_follows_a_ca_whose_key_is_gone(pki, issued):
    assert (
        ask("issuing-ca", issued.x509, pki["issuing"].certificate).response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    )
    CertificateAuthority.objects.filter(pk=pki["issuing"].pk).update(key_backend=KeyBackendName.NONE)
    answer = ask("issuing-ca", issued.x509, pki["issuing"].certificate)
    assert answer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_the_cached_ca_follows_a_new_ca_certificate_and_its_responder(pki, issued):
    root, issuing = pki["root"], pki["issuing"]
    assert ask("issuing-ca", issued.x509, issuing.certificate).certificate_status is ocsp.OCSPCertStatus.GOOD
    # The slug now names another CA row, with another certificate and key (the root's).
    CertificateAuthority.objects.filter(pk=issuing.pk).update(slug="retired-ca")
    CertificateAuthority.objects.filter(pk=root.pk).update(slug="issuing-ca")

    old = ask("issuing-ca", issued.x509, issuing.certificate)
    assert old.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED  # no longer the CA of that slug
    new = ask("issuing-ca", issuing.certificate, root.certificate)  # the issuing CA's certificate, from the root
    assert new.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert new.certificate_status is ocsp.OCSPCertStatus.GOOD
    responder = new.certificates[0]
    responder.verify_directly_issued_by(root.certificate)  # the new CA's responder signs, not the old one's
    assert ask("retired-ca", issued.x509, issuing.certificate).certificate_status is ocsp.OCSPCertStatus.GOOD
