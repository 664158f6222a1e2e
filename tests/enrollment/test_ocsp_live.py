"""The OCSP responder over HTTP, asked by the real `openssl ocsp` client (POST) and by GET.

Certificates name TEST_BASE_URL (a public name, as the SBR want), so the client is pointed
at the live test server explicitly with -url.
"""

from __future__ import annotations

import base64
import subprocess
import urllib.parse
import urllib.request
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from django.utils import timezone
from portal_testing import require_tool

from enrollment.keystore.ocsp import ocsp_responder_cache_clear
from enrollment.models import Certificate
from enrollment.pki.backends import InMemoryKeyBackend
from enrollment.pki.keys import generate_private_key
from enrollment.pki.profiles import Subscriber, smime_certificate_builder
from enrollment.revocation.services import certificate_revoke
from enrollment.services.authorities import issuer_info, organization_from_settings


@pytest.fixture(autouse=True)
def responder_dir(settings, tmp_path):
    settings.PORTAL_CA_KEY_DIR = tmp_path / "ca-keys"
    ocsp_responder_cache_clear()
    yield
    ocsp_responder_cache_clear()


@pytest.fixture
def files(pki, tmp_path):
    """PEM files for the client: the issuer, the trust chain, and a writer for leaves."""
    issuing = pki["issuing"].certificate
    root = pki["root"].certificate
    (tmp_path / "issuer.pem").write_bytes(issuing.public_bytes(Encoding.PEM))
    (tmp_path / "chain.pem").write_bytes(issuing.public_bytes(Encoding.PEM) + root.public_bytes(Encoding.PEM))

    def leaf(name: str, certificate: x509.Certificate) -> Path:
        path = tmp_path / f"{name}.pem"
        path.write_bytes(certificate.public_bytes(Encoding.PEM))
        return path

    return tmp_path, leaf


def openssl_ocsp(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [require_tool("openssl"), "ocsp", *map(str, args)], capture_output=True, text=True, timeout=60
    )


def ask(live_server, directory: Path, leaf: Path, *extra) -> str:
    result = openssl_ocsp(
        "-issuer", directory / "issuer.pem",
        "-cert", leaf,
        "-url", f"{live_server.url}/ocsp/issuing-ca",
        "-resp_text",
        "-CAfile", directory / "chain.pem",
        *extra,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Response verify OK" in output, output
    return output


def verdict(output: str, leaf: Path) -> str:
    lines = [line for line in output.splitlines() if line.startswith(f"{leaf}: ")]
    assert len(lines) == 1, output
    return lines[0].split(": ", 1)[1].strip()


def stranger(pki) -> x509.Certificate:
    """Signed by the test issuing CA but never recorded: the responder must not call it good."""
    key = generate_private_key("ec-p256")
    builder = smime_certificate_builder(
        certificate_type="mailbox-strict",
        subscriber=Subscriber("stranger@example.org"),
        organization=organization_from_settings(),
        issuer=issuer_info(pki["issuing"]),
        public_key=key.public_key(),
        not_before=timezone.now() - timedelta(minutes=1),
    )
    return InMemoryKeyBackend(pki["material"].issuing_key).sign_certificate(builder)


@pytest.mark.parametrize("signer", ["delegated", "ca"])
def test_openssl_good_revoked_unknown(live_server, pki, issued, files, settings, signer):
    settings.PORTAL_OCSP_SIGNER = signer
    directory, leaf = files
    good = leaf("alice", issued.x509)

    output = ask(live_server, directory, good, "-nonce")
    assert verdict(output, good) == "good"
    assert "OCSP Nonce" in output
    assert ("Responder Id:" in output) and ("Certificate:" in output) == (signer == "delegated")

    output = ask(live_server, directory, good, "-no_nonce")
    assert verdict(output, good) == "good"
    assert "OCSP Nonce" not in output

    Certificate.objects.filter(pk=issued.pk).update(
        status=Certificate.Status.REVOKED,
        revoked_at=timezone.now().replace(microsecond=0) - timedelta(minutes=30),
        revocation_reason="key_compromise",
    )
    output = ask(live_server, directory, good)
    assert verdict(output, good) == "revoked"
    assert "Reason: keyCompromise" in output

    unknown = leaf("stranger", stranger(pki))
    output = ask(live_server, directory, unknown, "-nonce")
    assert verdict(output, unknown) == "unknown"


def test_openssl_sha256_cert_id(live_server, pki, issued, files):
    directory, leaf = files
    good = leaf("alice", issued.x509)
    result = openssl_ocsp(
        "-issuer", directory / "issuer.pem", "-sha256", "-cert", good,
        "-url", f"{live_server.url}/ocsp/issuing-ca", "-CAfile", directory / "chain.pem", "-resp_text",
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert "Response verify OK" in output and verdict(output, good) == "good", output
    assert "Hash Algorithm: sha256" in output


def test_openssl_unknown_ca_is_unauthorized(live_server, pki, issued, files):
    directory, leaf = files
    good = leaf("alice", issued.x509)
    result = openssl_ocsp(
        "-issuer", directory / "issuer.pem", "-cert", good,
        "-url", f"{live_server.url}/ocsp/no-such-ca", "-CAfile", directory / "chain.pem",
    )  # fmt: skip
    assert "unauthorized" in (result.stdout + result.stderr).lower(), result.stdout + result.stderr


def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, dict(response.headers), response.read()


def test_get_and_post_over_http(live_server, pki, issued, files, pkilint):
    directory, leaf = files
    good = leaf("alice", issued.x509)
    request = directory / "request.der"
    made = openssl_ocsp("-issuer", directory / "issuer.pem", "-cert", good, "-nonce", "-reqout", request)
    assert made.returncode == 0, made.stderr
    der = request.read_bytes()

    # GET: the URL-encoded base64 of the DER request (RFC 6960 appendix A.1).
    encoded = urllib.parse.quote(base64.b64encode(der).decode(), safe="")
    asked_at = timezone.now()  # the server answers later: its max-age counts from then
    status, headers, body = _get(f"{live_server.url}/ocsp/issuing-ca/{encoded}")
    assert status == 200 and headers["Content-Type"] == "application/ocsp-response"
    response = ocsp.load_der_ocsp_response(body)
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    # Caches may keep it until nextUpdate, and no longer.
    max_age = int(headers["Cache-Control"].split("max-age=")[1].split(",")[0])
    until_next_update = (response.next_update_utc - asked_at).total_seconds()
    assert 0 <= until_next_update - max_age < 60
    assert "public" in headers["Cache-Control"]
    assert parsedate_to_datetime(headers["Expires"]) == response.next_update_utc
    assert parsedate_to_datetime(headers["Last-Modified"]) == response.this_update_utc
    # openssl checks the answer against its own request (nonce included) and the chain.
    (directory / "get.der").write_bytes(body)
    result = openssl_ocsp(
        "-reqin", request, "-respin", directory / "get.der",
        "-issuer", directory / "issuer.pem", "-CAfile", directory / "chain.pem", "-resp_text",
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert "Response verify OK" in output and "Cert Status: good" in output, output
    code, lint = pkilint("lint_ocsp_response", body, args=("lint", "-s", "WARNING", "--document-format", "DER"))
    assert code == 0 and lint.strip() == "", lint

    # Unpadded and URL-safe base64 and unencoded slashes are understood as well.
    plain = base64.b64encode(der).decode().rstrip("=")
    for variant in (plain, plain.replace("+", "-").replace("/", "_")):
        status, _, body = _get(f"{live_server.url}/ocsp/issuing-ca/{variant}")
        assert ocsp.load_der_ocsp_response(body).certificate_status is ocsp.OCSPCertStatus.GOOD

    # POST with the OCSP media type, as openssl does.
    post = urllib.request.Request(
        f"{live_server.url}/ocsp/issuing-ca", data=der, headers={"Content-Type": "application/ocsp-request"}
    )
    with urllib.request.urlopen(post, timeout=30) as answer:
        assert answer.status == 200 and answer.headers["Content-Type"] == "application/ocsp-response"
        assert answer.headers["Cache-Control"] == "no-store"
        response = ocsp.load_der_ocsp_response(answer.read())
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD


@pytest.mark.parametrize("path", ["/ocsp/issuing-ca/%%%not-base64", "/ocsp/issuing-ca/", "/ocsp/issuing-ca/AAAA"])
def test_malformed_get_is_an_ocsp_error_not_an_http_error(live_server, pki, path):
    status, headers, body = _get(live_server.url + path)
    assert status == 200
    assert ocsp.load_der_ocsp_response(body).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert headers["Cache-Control"] == "no-store"


def test_malformed_post(live_server, pki):
    post = urllib.request.Request(
        f"{live_server.url}/ocsp/issuing-ca", data=b"\x30\x00junk", headers={"Content-Type": "application/ocsp-request"}
    )
    with urllib.request.urlopen(post, timeout=30) as answer:
        response = ocsp.load_der_ocsp_response(answer.read())
    assert response.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_sha1_and_sha256_requests_for_the_same_serial_agree(live_server, pki, issued):
    issuing = pki["issuing"].certificate
    for algorithm in (hashes.SHA1(), hashes.SHA256(), hashes.SHA384(), hashes.SHA512()):
        der = ocsp.OCSPRequestBuilder().add_certificate(issued.x509, issuing, algorithm).build()
        post = urllib.request.Request(
            f"{live_server.url}/ocsp/issuing-ca",
            data=der.public_bytes(Encoding.DER),
            headers={"Content-Type": "application/ocsp-request"},
        )
        with urllib.request.urlopen(post, timeout=30) as answer:
            response = ocsp.load_der_ocsp_response(answer.read())
        assert response.certificate_status is ocsp.OCSPCertStatus.GOOD, algorithm.name
        assert response.hash_algorithm.name == algorithm.name


def test_revocation_through_the_service_shows_at_once(live_server, pki, issued, files):
    directory, leaf = files
    good = leaf("alice", issued.x509)
    assert verdict(ask(live_server, directory, good), good) == "good"
    certificate_revoke(serial=issued.serial, actor=None, reason="cessation_of_operation")
    output = ask(live_server, directory, good, "-nonce")
    assert verdict(output, good) == "revoked"
    assert "Reason: cessationOfOperation" in output
