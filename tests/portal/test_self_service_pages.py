"""The employee's pages and the public CA files, through Django's test client."""

import re
import subprocess
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from django.utils import timezone
from portal_testing import PASSWORD, require_tool

from enrollment.models import CertificateRequest
from escrow.models import PickupCopy


@pytest.fixture
def alice_client(client, alice):
    assert client.login(username="alice", password=PASSWORD)
    return client


def test_home_requires_login(client, pki):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_employee_requests_a_certificate(pki, alice_client, alice):
    response = alice_client.post(
        "/request/", {"key_type": "ec-p256", "certificate_type": "sponsor-strict"}, follow=True
    )

    assert response.status_code == 200
    request = CertificateRequest.objects.get(employee=alice.employee)
    assert request.key_type == "ec-p256" and request.state == "pending"
    assert f"Request #{request.pk} submitted" in response.content.decode()


def test_bad_choice_is_a_message_not_a_500(pki, alice_client, alice):
    response = alice_client.post("/request/", {"key_type": "dsa-1024", "certificate_type": "x"}, follow=True)
    assert response.status_code == 200
    assert "Choose a key type" in response.content.decode()
    assert not CertificateRequest.objects.exists()


def test_home_lists_certificate_with_download_links(pki, issued, alice_client):
    page = alice_client.get("/").content.decode()
    assert issued.serial in page
    assert f"/certificates/{issued.serial}/pkcs12/" in page


@pytest.mark.parametrize("fmt, marker", [("modern", "AES-256-CBC"), ("compatible", "pbeWithSHA1And3-KeyTripleDES-CBC")])
def test_pkcs12_download_opens_with_openssl(pki, issued, alice_client, tmp_path, fmt, marker):
    passphrase = "correct horse battery staple"
    response = alice_client.post(
        f"/certificates/{issued.serial}/pkcs12/",
        {"passphrase": passphrase, "passphrase_again": passphrase, "format": fmt},
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-pkcs12"
    assert response["Content-Disposition"] == 'attachment; filename="alice@example.org.p12"'
    assert "no-store" in response["Cache-Control"]
    path = tmp_path / "alice.p12"
    path.write_bytes(response.content)
    info = subprocess.run(
        [require_tool("openssl"), "pkcs12", "-in", str(path), "-passin", f"pass:{passphrase}", "-info", "-nodes"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert marker in info.stderr + info.stdout
    bundle = pkcs12.load_pkcs12(response.content, passphrase.encode())
    assert bundle.cert.certificate == issued.x509
    assert bundle.cert.friendly_name and b"Alice Archer" in bundle.cert.friendly_name
    assert [c.certificate for c in bundle.additional_certs] == [pki["issuing"].certificate, pki["root"].certificate]
    assert bundle.key.public_key().public_bytes(Encoding.DER, _spki()) == issued.x509.public_key().public_bytes(
        Encoding.DER, _spki()
    )


def _spki():
    from cryptography.hazmat.primitives.serialization import PublicFormat

    return PublicFormat.SubjectPublicKeyInfo


def test_mismatched_or_short_passphrase_is_a_form_error(pki, issued, alice_client):
    url = f"/certificates/{issued.serial}/pkcs12/"
    response = alice_client.post(
        url, {"passphrase": "a long passphrase", "passphrase_again": "another one", "format": "modern"}
    )
    assert response.status_code == 200 and "The two passphrases differ." in response.content.decode()
    response = alice_client.post(url, {"passphrase": "short", "passphrase_again": "short", "format": "modern"})
    assert response.status_code == 200 and "at least 12 characters" in response.content.decode()
    issued.pickup.refresh_from_db()
    assert issued.pickup.download_count == 0


def test_another_employee_gets_404_for_the_key_and_the_certificate(pki, issued, client, bob):
    client.login(username="bob", password=PASSWORD)
    url = f"/certificates/{issued.serial}/pkcs12/"
    assert client.get(url).status_code == 404
    assert (
        client.post(url, {"passphrase": "x" * 20, "passphrase_again": "x" * 20, "format": "modern"}).status_code == 404
    )
    assert client.get(f"/certificates/{issued.serial}.pem").status_code == 404


def test_certificate_alone_as_pem_and_der(pki, issued, alice_client):
    pem = alice_client.get(f"/certificates/{issued.serial}.pem")
    der = alice_client.get(f"/certificates/{issued.serial}.cer")
    assert x509.load_pem_x509_certificate(pem.content) == issued.x509
    assert der["Content-Type"] == "application/pkix-cert" and x509.load_der_x509_certificate(der.content) == issued.x509
    assert alice_client.get(f"/certificates/{issued.serial}.exe").status_code == 404


def test_ca_chain_download(pki, alice_client):
    chain = x509.load_pem_x509_certificates(alice_client.get("/ca-chain.pem").content)
    assert chain == [pki["issuing"].certificate, pki["root"].certificate]


def test_ca_certificate_and_crl_are_served_at_the_urls_the_certificates_name(pki, issued, client, pkilint):
    cert = issued.x509
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    ca_url = next(
        d.access_location.value for d in aia if d.access_method == x509.AuthorityInformationAccessOID.CA_ISSUERS
    )
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    crl_url = cdp[0].full_name[0].value
    base = "http://pki.example.org"
    assert ca_url.startswith(base) and crl_url.startswith(base)

    response = client.get(ca_url.removeprefix(base))
    assert response["Content-Type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(response.content) == pki["issuing"].certificate

    response = client.get(crl_url.removeprefix(base))
    assert response["Content-Type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(response.content)
    assert crl.is_signature_valid(pki["issuing"].certificate.public_key())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
    code, output = pkilint(
        "lint_crl", crl.public_bytes(Encoding.PEM), args=("lint", "-t", "CRL", "-p", "BR", "-s", "WARNING")
    )
    assert code == 0, output
    # Served from the stored copy until it is due: the CRL number does not race ahead.
    again = x509.load_der_x509_crl(client.get(crl_url.removeprefix(base)).content)
    assert again.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
    assert client.get("/pki/no-such-ca.crl").status_code == 404


def test_install_instructions_name_the_clients(client, pki):
    page = client.get("/help/install/").content.decode()
    for name in ("Outlook", "Apple Mail", "iPhone", "Android", "Gmail", "Thunderbird"):
        assert name in page


# --- The guided home: one card per state, the request form only when a request makes sense -------------

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"


def _main(html: str) -> str:
    """The page without its header (the menu links every self-service page)."""
    return html.split('<main id="main"', 1)[1]


def _card(html: str, serial: str) -> str:
    match = re.search(rf'<article [^>]*data-serial="{serial}"[^>]*>(.*?)</article>', html, re.S)
    assert match, f"no card for {serial}"
    return match.group(1)


def test_without_a_request_the_form_is_the_pages_action(pki, alice_client):
    page = _main(alice_client.get("/").content.decode())
    assert 'data-card="no-request"' in page and "You have no certificate yet." in page
    assert re.search(r'<section class="card" id="request-form"[^>]*>', page)  # open, not behind a disclosure
    assert 'action="/request/"' in page


def test_a_pending_request_says_what_happens_next_and_offers_no_second_request(pki, alice_client, alice):
    from enrollment.services.requests import certificate_request_create

    request = certificate_request_create(employee=alice.employee, submitted_by=alice)
    page = _main(alice_client.get("/").content.decode())
    assert f'data-pending-request="{request.pk}"' in page and "Waiting for approval" in page
    assert "What happens next" in page and "The approvers have been sent a mail" in page
    assert f"{request.created_at:%Y-%m-%d}" in page
    assert 'action="/request/"' not in page and 'id="request-form"' not in page
    # The service refuses the second request anyway.
    response = alice_client.post(
        "/request/", {"key_type": "rsa-3072", "certificate_type": "sponsor-strict"}, follow=True
    )
    assert "There is a pending request" in response.content.decode()
    assert CertificateRequest.objects.filter(employee=alice.employee).count() == 1


def test_a_rejected_request_shows_its_reason_and_request_again(pki, alice_client, alice, approver):
    from enrollment.services.requests import certificate_request_create, certificate_request_reject

    request = certificate_request_create(employee=alice.employee, submitted_by=alice)
    certificate_request_reject(request_id=request.pk, approver=approver, reason="Use your work address")
    page = _main(alice_client.get("/").content.decode())
    assert 'data-card="rejected"' in page and f"Request #{request.pk} was rejected" in page
    assert "Use your work address" in page
    assert 'href="#request-form"' in page and "Request again" in page
    assert 'id="request-form"' in page and 'action="/request/"' in page


def test_a_ready_certificate_leads_with_the_download_and_hides_the_serial_in_details(pki, issued, alice_client):
    page = _main(alice_client.get("/").content.decode())
    card = _card(page, issued.serial)
    assert "Ready to download" in card and f"/certificates/{issued.serial}/pkcs12/" in card
    assert f"{timezone.localtime(issued.pickup.expires_at):%Y-%m-%d %H:%M}" in card  # the deadline
    before_details, details = card.split('<details class="cert-details">', 1)
    assert issued.serial not in re.sub(r"<[^>]+>", "", before_details)  # in no text before the disclosure
    assert issued.serial in details and issued.fingerprint_sha256 in details and "escrowed" in details
    # A valid certificate outside its renewal window: another request only behind a disclosure.
    assert re.search(
        r'<details class="card disclosure" id="request-form">\s*<summary>Request another certificate', page
    )


def test_after_the_download_the_next_step_is_the_install_page_for_the_device(pki, issued, alice_client):
    PickupCopy.objects.filter(certificate=issued).update(download_count=1)
    card = _card(alice_client.get("/", HTTP_USER_AGENT=IPHONE).content.decode(), issued.serial)
    assert "Next: install it on your device" in card
    assert 'class="button primary" href="/help/install/ios-mail/"' in card
    assert f"/certificates/{issued.serial}/pkcs12/" in card  # download again, as a secondary link


def test_downloaded_is_known_from_the_audit_log_once_the_pickup_copy_is_gone(pki, issued, alice_client, alice):
    from portal.home_state import home_state_of

    PickupCopy.objects.filter(certificate=issued).update(download_count=1)
    assert (
        alice_client.post(
            f"/certificates/{issued.serial}/pkcs12/",
            {"passphrase": "correct horse battery", "passphrase_again": "correct horse battery", "format": "modern"},
        ).status_code
        == 200
    )
    PickupCopy.objects.filter(certificate=issued).delete()
    (card,) = home_state_of(user=alice).current
    assert (card.stage, card.downloaded, card.pickup_until) == ("valid", True, None)


def test_a_renewed_certificate_is_a_previous_one(pki, issued, alice_client, alice, settings):
    from enrollment.models import Certificate

    Certificate.objects.filter(pk=issued.pk).update(not_after=timezone.now() + timedelta(days=5))
    page = _main(alice_client.get("/").content.decode())
    assert "Renew" in _card(page, issued.serial)
    alice_client.post(f"/certificates/{issued.serial}/renew/")
    page = _main(alice_client.get("/").content.decode())
    renewal = Certificate.objects.exclude(pk=issued.pk).get(employee=alice.employee)
    _card(page, renewal.serial)
    assert not re.search(rf'<article [^>]*data-serial="{issued.serial}"', page)  # no longer a current card
    previous = page.split('id="previous-certificates"', 1)[1]
    assert f'data-serial="{issued.serial}"' in previous and "renewed: use the new certificate" in previous


def test_an_account_without_employee_record_is_told_so(pki, client, make_user):
    make_user("carol", employee=False)
    assert client.login(username="carol", password=PASSWORD)
    page = client.get("/").content.decode()
    assert "no employee record with a mailbox" in page and 'action="/request/"' not in page


# --- One look: the header's menu, the admin in the portal's colours ------------------------------------


def test_the_header_links_home_and_the_self_service_pages(pki, alice_client):
    header = alice_client.get("/tokens/").content.decode().split("<main", 1)[0]
    for href, name in (("/", "My certificates"), ("/help/install/", "Install help"), ("/recovery/", "Key recovery")):
        assert f'<a href="{href}"' in header and name in header
    assert 'aria-current="page">API tokens' in header
    assert "Administration" not in header  # not staff
    assert 'src="/static/portal/portal.js"' in header


def test_the_admin_has_the_portals_colours_and_a_way_back(pki, client, approver):
    assert client.login(username="approver", password=PASSWORD)
    page = client.get("/admin/").content.decode()
    assert "/static/portal/admin.css" in page
    assert re.search(r'<a class="portal-home" href="/">[^<]*back to the portal</a>', page)


# --- Accessibility: descriptions that exist, no empty column header ------------------------------------


def test_every_described_by_id_on_the_download_page_exists(pki, issued, alice_client):
    page = alice_client.post(
        f"/certificates/{issued.serial}/pkcs12/", {"passphrase": "short", "passphrase_again": "x", "format": "modern"}
    ).content.decode()
    described = [i for value in re.findall(r'aria-describedby="([^"]+)"', page) for i in value.split()]
    assert "id_passphrase_helptext" in described and "id_passphrase_error" in described
    for target in described:
        assert f'id="{target}"' in page, target


def test_the_tokens_page_names_every_column_and_links_home(pki, alice_client):
    alice_client.post("/tokens/", {"name": "backup script", "expires_in_days": 30, "submission": "once"})
    page = _main(alice_client.get("/tokens/").content.decode())
    assert "<th></th>" not in page and re.search(r"<th[^>]*>State</th>", page)
    assert 'data-token="' in page
    assert '<a href="/">Back to my certificates</a>' in page


def test_an_approved_request_is_being_issued(pki, alice_client, alice, approver):
    from enrollment.services.requests import certificate_request_create

    request = certificate_request_create(employee=alice.employee, submitted_by=alice)
    CertificateRequest.objects.filter(pk=request.pk).update(
        state="approved", decided_by=approver, decided_at=timezone.now()
    )
    page = _main(alice_client.get("/").content.decode())
    assert 'data-card="issuing"' in page and "Your certificate is being issued" in page and "by approver" in page
    assert 'action="/request/"' not in page


def test_a_failed_issuance_shows_the_reason(pki, alice_client, alice):
    from enrollment.services.requests import certificate_request_create

    request = certificate_request_create(employee=alice.employee, submitted_by=alice)
    CertificateRequest.objects.filter(pk=request.pk).update(state="failed", reason="The CA key is offline.")
    page = _main(alice_client.get("/").content.decode())
    assert 'data-card="failed"' in page and f"Request #{request.pk} could not be issued" in page
    assert "The CA key is offline." in page and "Request again" in page and 'action="/request/"' in page
