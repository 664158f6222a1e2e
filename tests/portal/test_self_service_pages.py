"""The employee's pages and the public CA files, through Django's test client."""

import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from portal_testing import PASSWORD, require_tool

from enrollment.models import CertificateRequest


@pytest.fixture
def alice_client(client, alice):
    assert client.login(username="alice", password=PASSWORD)
    return client


def test_home_requires_login(client, pki):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_employee_requests_a_certificate(pki, alice_client, alice):
    response = alice_client.post("/request/", {"key_type": "ec-p256", "certificate_type": "sponsor-strict"}, follow=True)

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
        capture_output=True, text=True, check=True,
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
    response = alice_client.post(url, {"passphrase": "a long passphrase", "passphrase_again": "another one", "format": "modern"})
    assert response.status_code == 200 and "The two passphrases differ." in response.content.decode()
    response = alice_client.post(url, {"passphrase": "short", "passphrase_again": "short", "format": "modern"})
    assert response.status_code == 200 and "at least 12 characters" in response.content.decode()
    issued.pickup.refresh_from_db()
    assert issued.pickup.download_count == 0


def test_another_employee_gets_404_for_the_key_and_the_certificate(pki, issued, client, bob):
    client.login(username="bob", password=PASSWORD)
    url = f"/certificates/{issued.serial}/pkcs12/"
    assert client.get(url).status_code == 404
    assert client.post(url, {"passphrase": "x" * 20, "passphrase_again": "x" * 20, "format": "modern"}).status_code == 404
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
    ca_url = next(d.access_location.value for d in aia if d.access_method == x509.AuthorityInformationAccessOID.CA_ISSUERS)
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
    code, output = pkilint("lint_crl", crl.public_bytes(Encoding.PEM), args=("lint", "-t", "CRL", "-p", "BR", "-s", "WARNING"))
    assert code == 0, output
    # Served from the stored copy until it is due: the CRL number does not race ahead.
    again = x509.load_der_x509_crl(client.get(crl_url.removeprefix(base)).content)
    assert again.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
    assert client.get("/pki/no-such-ca.crl").status_code == 404


def test_install_instructions_name_the_clients(client, pki):
    page = client.get("/help/install/").content.decode()
    for name in ("Outlook", "Apple Mail", "iPhone", "Android", "Gmail", "Thunderbird"):
        assert name in page
