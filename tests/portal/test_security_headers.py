"""Every kind of answer carries the Content-Security-Policy, Permissions-Policy and, over https, HSTS.

The policy is django-csp's (CONTENT_SECURITY_POLICY in portal/settings/base.py): no inline script or
style without the request's nonce. The browser tests (tests/e2e/test_browser_csp.py) show that
the pages still work under it.
"""

from __future__ import annotations

import base64
import re

import pytest
from cryptography.x509 import ocsp
from django.test import Client
from portal_testing import PASSWORD

YEAR = 365 * 24 * 3600


@pytest.fixture
def https(settings):
    """Production's HTTPS settings (the suite runs in development, where they are off)."""
    settings.SECURE_HSTS_SECONDS = YEAR
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_SSL_REDIRECT = True
    return settings


def _ocsp_get_path(pki) -> str:
    from cryptography.hazmat.primitives import hashes, serialization

    issuing = pki["material"].issuing
    request = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        issuer_name_hash=b"\0" * 20, issuer_key_hash=b"\0" * 20, serial_number=1, algorithm=hashes.SHA1()
    ).build()
    assert issuing.public_bytes(serialization.Encoding.DER)
    return "/ocsp/issuing-ca/" + base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()


def _pages(pki) -> dict[str, tuple[str, str | None]]:
    """Kind of page → (path, who is logged in)."""
    return {
        "login": ("/login/", None),
        "self-service": ("/", "alice"),
        "install help": ("/help/install/", "alice"),
        "tokens": ("/tokens/", "alice"),
        "admin login": ("/admin/login/", None),
        "admin": ("/admin/", "admin"),
        "admin changelist": ("/admin/enrollment/certificaterequest/", "admin"),
        "API JSON": ("/api/v1/certificates/", "alice"),
        "API error JSON": ("/api/v1/certificates/", None),
        "OpenAPI schema": ("/api/v1/schema/", None),
        "Swagger UI": ("/api/v1/docs/", None),
        "ReDoc": ("/api/v1/redoc/", None),
        "static file": ("/static/portal/portal.css", None),
        "CA certificate": ("/pki/issuing-ca.crt", None),
        "CRL": ("/pki/issuing-ca.crl", None),
        "OCSP": (_ocsp_get_path(pki), None),
    }


@pytest.fixture
def clients(pki, alice, make_user):
    make_user("admin", superuser=True, employee=False)
    made = {}

    def client_for(who: str | None, **kwargs) -> Client:
        client = Client(**kwargs)
        if who:
            assert client.login(username=who, password=PASSWORD)
        return client

    made["for"] = client_for
    return made


def _directives(header: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part}


KINDS = [
    "login", "self-service", "install help", "tokens", "admin login", "admin", "admin changelist", "API JSON",
    "API error JSON", "OpenAPI schema", "Swagger UI", "ReDoc", "static file", "CA certificate", "CRL", "OCSP",
]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_page_has_the_headers(pki, clients, https, kind):
    path, who = _pages(pki)[kind]
    response = clients["for"](who).get(path, secure=True)
    assert response.status_code in (200, 302, 401), (kind, response.status_code)
    policy = _directives(response["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
    for directive in ("script-src", "style-src"):
        assert "'unsafe-inline'" not in policy[directive] and "'unsafe-eval'" not in policy[directive]
        assert policy[directive][0] == "'self'"
    assert response["Strict-Transport-Security"] == f"max-age={YEAR}; includeSubDomains; preload"
    assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_pages_with_inline_script_name_its_nonce(pki, clients):
    for path in ("/api/v1/docs/", "/api/v1/redoc/"):
        response = clients["for"](None).get(path)
        nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
        html = response.content.decode()
        inline_scripts = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
        assert inline_scripts and all(f'nonce="{nonce}"' in attributes for attributes in inline_scripts), path
        assert "<style" not in html and "fonts.googleapis.com" not in html, path


def test_no_template_has_inline_script_style_or_handlers():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "templates"
    for template in root.rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"\son[a-z]+\s*=", text), template
        if template.is_relative_to(root / "mail"):
            # Mail is no page: clients load no style sheets, so its HTML styles inline; never a script.
            assert "<script" not in text, template
            continue
        assert not re.search(r"\sstyle\s*=", text), template
        for tag in re.findall(r"<(?:script|style)\b(?![^>]*\bsrc=)[^>]*>", text):
            assert "csp_nonce" in tag, (template, tag)


def test_hsts_only_over_https_and_plain_http_is_redirected_except_pki_and_ocsp(pki, clients, https):
    plain = clients["for"](None)
    response = plain.get("/login/")
    assert response.status_code == 301 and response["Location"] == "https://testserver/login/"
    assert "Strict-Transport-Security" not in response
    for path in ("/pki/issuing-ca.crt", "/pki/issuing-ca.crl", _ocsp_get_path(pki)):
        response = plain.get(path)
        assert response.status_code == 200, path  # relying parties fetch these over plain http (SBR)
        assert "Strict-Transport-Security" not in response
    assert plain.post("/ocsp/issuing-ca", b"junk", content_type="application/ocsp-request").status_code != 301


def test_behind_a_trusted_proxy_its_forwarded_scheme_and_address_count(pki, clients, https, settings):
    settings.PORTAL_TRUSTED_PROXIES = ["10.0.0.1"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxied = clients["for"](None, REMOTE_ADDR="10.0.0.1")
    response = proxied.get("/login/", headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 200 and "Strict-Transport-Security" in response
    # From anyone else the header is dropped: no https, so the redirect.
    direct = clients["for"](None, REMOTE_ADDR="192.0.2.7")
    assert direct.get("/login/", headers={"X-Forwarded-Proto": "https"}).status_code == 301
