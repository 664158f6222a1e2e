"""The install pages (one per mail client, a chooser first) and the administrators' mail set-up page.

Every page renders, every link on it resolves, the CA files served parse with cryptography and
openssl, and the single-tier warning shows only for a single-tier CA (issue 14, finding 6).
"""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7
from django.core.checks import WARNING, run_checks
from django.urls import Resolver404, resolve, reverse
from portal_testing import require_tool

from portal.install_views import CLIENTS

CLIENT_SLUGS = [client.slug for client in CLIENTS]
REQUIRED_CLIENTS = {
    "outlook-windows", "outlook-mac", "outlook-web", "outlook-mobile", "apple-mail", "ios-mail",
    "samsung-email", "gmail", "thunderbird", "evolution", "kmail",
}


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a" and (href := dict(attrs).get("href")):
            self.hrefs.append(href)


def links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.hrefs


def assert_links_resolve(client, html: str) -> None:
    for href in links(html):
        parts = urlsplit(href)
        if parts.scheme or parts.netloc:
            continue  # no external links expected, but they are not ours to resolve
        if not parts.path:
            continue  # "#anchor" on the same page
        try:
            resolve(parts.path)
        except Resolver404:
            pytest.fail(f"{href} names no page")
        if parts.fragment:
            target = client.get(parts.path).content.decode()
            assert f'id="{parts.fragment}"' in target, f"{href}: no element with that id"


@pytest.fixture
def pki_admin(make_user):
    from enrollment.roles import PKI_ADMINISTRATORS

    return make_user("pkiadmin", groups=[PKI_ADMINISTRATORS], given_name="Pat", surname="Admin")


def test_every_client_of_the_issue_has_a_page():
    assert REQUIRED_CLIENTS <= set(CLIENT_SLUGS)


def test_the_chooser_lists_every_client_and_its_download(client, pki):
    response = client.get(reverse("portal:install"))
    assert response.status_code == 200
    html = response.content.decode()
    for mail_client in CLIENTS:
        assert reverse("portal:install-client", args=[mail_client.slug]) in html
        assert mail_client.name in html
    assert "RSA is the default and recommended" in html
    assert pki["root"].slug in html  # the root CA certificate to trust
    assert_links_resolve(client, html)


def test_the_chooser_renders_before_any_ca_exists(client, db):
    response = client.get(reverse("portal:install"))
    assert response.status_code == 200
    assert "No certificate authority has been set up yet" in response.content.decode()


@pytest.mark.parametrize("slug", CLIENT_SLUGS)
def test_each_client_page_renders_with_format_trust_and_limits(client, pki, slug):
    response = client.get(reverse("portal:install-client", args=[slug]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Trusting the organization's root CA" in html
    assert re.search(r"PKCS#12 “(Modern|Compatible)”|configuration profile", html)
    assert "Key types and limits" in html
    assert_links_resolve(client, html)


def test_an_unknown_client_is_a_404(client, db):
    assert client.get("/help/install/lotus-notes/").status_code == 404


@pytest.mark.parametrize(
    "slug, expected",
    [
        ("thunderbird", ["Trust this CA to identify email users", "issuer has been marked as not trusted"]),
        ("evolution", ["Trust this CA to identify email users", "cannot encrypt to EC recipients"]),
        ("apple-mail", ["Secure Mail (S/MIME)", "Always Trust"]),
        ("outlook-mac", ["Secure Mail (S/MIME)"]),
        ("ios-mail", ["Certificate Trust Settings", "Enable full trust for root certificates"]),
        ("kmail", ["gpgsm --import", "trustlist.txt", "Trust Root Certificate", "PKCS#12 “Compatible”",
                   "cannot check a CRL signed by an ECDSA CA"]),
        ("gmail", ["Upload a personal certificate", "do not use certificates installed on the phone"]),
        ("outlook-windows", ["recent Microsoft 365 Apps build"]),
        ("outlook-web", ["Set-SmimeConfig"]),
    ],
)
def test_client_pages_say_what_the_issue_asks(client, pki, slug, expected):
    html = client.get(reverse("portal:install-client", args=[slug])).content.decode()
    for text in expected:
        assert text in html, (slug, text)


def test_the_wrong_gmail_keystore_claim_is_gone(client, pki):
    for path in [reverse("portal:install")] + [reverse("portal:install-client", args=[s]) for s in CLIENT_SLUGS]:
        html = client.get(path).content.decode()
        assert "Gmail with enhanced S/MIME" not in html
        assert not re.search(r"Gmail[^.]*(takes|uses|picks)[^.]*(keystore|device)", html), path


# --- The administrators' page ----------------------------------------------------------------


def test_the_mail_setup_page_is_for_pki_administrators_only(client, pki, alice, approver, pki_admin):
    url = reverse("portal:mail-setup")
    assert client.get(url).status_code == 302  # to the log-in
    client.force_login(alice)
    assert client.get(url).status_code == 403
    assert client.get(reverse("portal:mail-setup-file", args=["ca-certificates.p7b"])).status_code == 403
    client.force_login(approver)
    assert client.get(url).status_code == 403
    client.force_login(pki_admin)
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("Set-SmimeConfig -SMIMECertificateIssuingCA", "Export-Certificate -Type SST", "certutil",
                 "Upload Root Certificate", "at least one intermediate CA", "CRLs reachable from the internet"):
        assert text in html, text
    assert 'id="single-tier-warning"' not in html  # the test hierarchy has two tiers
    assert_links_resolve(client, html)


def _served(client, name: str):
    response = client.get(reverse("portal:mail-setup-file", args=[name]))
    assert response.status_code == 200, name
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    return response.content


def _openssl(*args: str, data: bytes) -> str:
    result = subprocess.run([require_tool("openssl"), *args], input=data, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_the_served_ca_files_parse(client, pki, pki_admin):
    client.force_login(pki_admin)
    root, issuing = pki["material"].root, pki["material"].issuing
    for ca, certificate in ((pki["root"], root), (pki["issuing"], issuing)):
        der = _served(client, f"{ca.slug}.cer")
        assert x509.load_der_x509_certificate(der) == certificate
        assert "Test" in _openssl("x509", "-inform", "DER", "-noout", "-subject", data=der)
        pem = _served(client, f"{ca.slug}.pem")
        assert x509.load_pem_x509_certificate(pem) == certificate
        assert pem.count(b"BEGIN CERTIFICATE") == 1  # Google takes one root per file
        _openssl("x509", "-noout", "-subject", data=pem)

    p7b = _served(client, "ca-certificates.p7b")
    assert pkcs7.load_der_pkcs7_certificates(p7b) == [root, issuing]
    listed = _openssl("pkcs7", "-inform", "DER", "-print_certs", "-noout", data=p7b)
    assert listed.count("subject=") == 2

    bundle = _served(client, "ca-certificates.pem")
    assert x509.load_pem_x509_certificates(bundle) == [root, issuing]
    assert client.get(reverse("portal:mail-setup-file", args=["nothing.cer"])).status_code == 404


def test_the_single_tier_warning_shows_for_a_single_tier_ca(client, pki, pki_admin):
    issuing = pki["issuing"]
    issuing.parent = None  # as `init_ca --single-tier` leaves it: the issuing CA is the root
    issuing.save(update_fields=["parent"])
    client.force_login(pki_admin)
    html = client.get(reverse("portal:mail-setup")).content.decode()
    assert 'id="single-tier-warning"' in html
    assert "Google Workspace refuses a root certificate that issues end-user certificates directly" in html
    served = x509.load_pem_x509_certificates(_served(client, "ca-certificates.pem"))
    assert served == [issuing.certificate]


def test_a_placeholder_base_url_is_flagged_on_the_setup_page(client, pki, pki_admin, settings):
    client.force_login(pki_admin)
    settings.PORTAL_BASE_URL = "http://pki.example.org"
    assert 'id="base-url-warning"' in client.get(reverse("portal:mail-setup")).content.decode()
    settings.PORTAL_BASE_URL = "http://pki.acme-corp.de"
    assert 'id="base-url-warning"' not in client.get(reverse("portal:mail-setup")).content.decode()


# --- The base URL placeholder (finding 9) ----------------------------------------------------


def test_the_placeholder_base_url_is_a_warning_in_development(settings):
    from portal.checks import PLACEHOLDER_TAG

    settings.ENVIRONMENT = "development"
    settings.PORTAL_BASE_URL = "http://pki.example.org"
    messages = run_checks(tags=[PLACEHOLDER_TAG])
    assert [(m.id, m.level) for m in messages] == [("portal.W001", WARNING)]
    assert "placeholder" in messages[0].msg and "Exchange Online" in messages[0].hint

    settings.PORTAL_BASE_URL = "http://pki.acme-corp.de"
    assert run_checks(tags=[PLACEHOLDER_TAG]) == []
    # Production refuses the placeholder (portal.E102); the warning is development's.
    settings.ENVIRONMENT, settings.PORTAL_BASE_URL = "production", "http://pki.example.org"
    assert run_checks(tags=[PLACEHOLDER_TAG]) == []
    assert "portal.E102" in [m.id for m in run_checks(include_deployment_checks=True)]


# --- Key types on the request form -----------------------------------------------------------


def test_the_request_form_recommends_rsa_and_names_the_ec_limits():
    from portal.forms import CertificateRequestForm

    field = CertificateRequestForm().fields["key_type"]
    assert field.initial.startswith("rsa-")
    labels = dict(field.choices)
    assert "recommended" in labels[field.initial]
    for key, label in labels.items():
        if key.startswith("ec-"):
            assert "Evolution" in label and "KMail" in label and "openssl smime" in label, label
        else:
            assert "every mail client" in label
