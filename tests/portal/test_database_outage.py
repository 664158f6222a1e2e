"""With the database unreachable: a 503 without a traceback, never a 500 (core/outage.py).

Pages answer the 503 page, the API its JSON error shape, OCSP an (unsigned) tryLater. The
outage is simulated by a connection that refuses every cursor (both backends), and on
PostgreSQL for real: the connection's settings pointed at a closed port.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import urllib.parse
from unittest import mock

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp
from django.db import InterfaceError, OperationalError, connection
from django.test import Client, override_settings
from portal_testing import PASSWORD


@contextlib.contextmanager
def database_down(error=OperationalError):
    """Every query fails as when the server is unreachable (the open test transaction is kept)."""

    def refuse(*args, **kwargs):
        raise error('connection to server at "127.0.0.1", port 5432 failed: Connection refused')

    with mock.patch.object(connection, "ensure_connection", refuse):
        yield


def _client(user=None) -> Client:
    # raise_request_exception=False: Django's test client re-raises an exception that a middleware
    # raised (it listens to got_request_exception), even where the answer is the 503.
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    return client


def _basic(user) -> str:
    return "Basic " + base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()


def assert_page_503(response):
    assert response.status_code == 503, response.content[:300]
    assert response["Retry-After"]
    text = response.content.decode()
    assert "Traceback" not in text and "OperationalError" not in text and "5432" not in text
    return text


def assert_api_503(response):
    assert_page_503(response)
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "unavailable"
    assert set(response.json()["error"]) == {"code", "message", "fields"}


def assert_try_later(response):
    assert response.status_code == 200  # OCSP: the status is in the OCSPResponse (RFC 6960 2.3)
    assert response["Content-Type"] == "application/ocsp-response"
    assert response["Cache-Control"] == "no-store"
    parsed = x509_ocsp.load_der_ocsp_response(response.content)
    assert parsed.response_status is x509_ocsp.OCSPResponseStatus.TRY_LATER


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_pages_answer_the_503_page(pki, alice, debug, error):
    client = _client(alice)  # the session is read from the database by a middleware, before any view
    with override_settings(DEBUG=debug), database_down(error):
        text = assert_page_503(client.get("/"))

    assert "<title>Not available at the moment" in text and "<style" not in text and "<script" not in text


@pytest.mark.parametrize("debug", [False, True])
def test_the_api_answers_the_json_503(pki, alice, debug):
    session = _client(alice)
    with override_settings(DEBUG=debug), database_down():
        assert_api_503(_client().get("/api/v1/requests/", HTTP_AUTHORIZATION=_basic(alice)))  # in the DRF view
        assert_api_503(session.get("/api/v1/certificates/"))  # in a middleware (the session)
        assert_api_503(_client().post("/api/v1/tokens/", {"name": "x"}, HTTP_AUTHORIZATION=_basic(alice)))


def test_a_view_outside_drf_answers_the_503_page(pki):
    with database_down():
        assert_page_503(_client().get("/pki/issuing-ca.crt"))


def _status_request(pki) -> bytes:
    """A well-formed request about a serial of the issuing CA: its answer needs the database (a
    malformed one does not, once the responder has its CA cached: enrollment/revocation/ocsp.py)."""
    issuer = pki["issuing"].certificate
    name_hash = hashlib.sha1(issuer.subject.public_bytes()).digest()  # noqa: S324 - RFC 6960 CertID
    key_hash = x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest
    builder = x509_ocsp.OCSPRequestBuilder().add_certificate_by_hash(name_hash, key_hash, 0x1234, hashes.SHA1())
    return builder.build().public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("method", ["get", "post"])
def test_ocsp_answers_try_later(pki, method):
    client = _client()
    der = _status_request(pki)
    with database_down():
        if method == "post":
            response = client.post("/ocsp/issuing-ca", der, content_type="application/ocsp-request")
        else:
            response = client.get("/ocsp/issuing-ca/" + urllib.parse.quote(base64.b64encode(der).decode(), safe=""))

    assert_try_later(response)


def test_the_portal_answers_again_when_the_database_is_back(pki, alice):
    client = _client(alice)
    with database_down():
        assert client.get("/").status_code == 503

    assert client.get("/").status_code == 200


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the socket is


def test_a_real_postgresql_outage_is_a_503(transactional_db, pki, alice):
    """The database server is not there at all: the connection's settings point at a closed port."""
    if connection.vendor != "postgresql":
        pytest.skip("a real server outage on PostgreSQL; `make test-postgres` runs this")
    session = _client(alice)
    der = _status_request(pki)
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))
    try:
        assert_page_503(session.get("/"))
        assert_api_503(session.get("/api/v1/certificates/"))
        assert_api_503(_client().get("/api/v1/requests/", HTTP_AUTHORIZATION=_basic(alice)))
        assert_try_later(_client().post("/ocsp/issuing-ca", der, content_type="application/ocsp-request"))
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
    assert session.get("/").status_code == 200
