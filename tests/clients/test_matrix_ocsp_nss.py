"""NSS asks the portal's live /ocsp/ responder (issue 14): good, then revoked once the portal revokes.

The certificates name the public TEST_BASE_URL, so NSS's ocspclnt is pointed at the live server
as its default responder (-l), trusting the responder certificate the portal signs its answers
with (-t), as an administrator configures Thunderbird's "OCSP responder" setting. For both CA
key types. `openssl ocsp` is covered by tests/enrollment/test_ocsp_live.py.
"""

from __future__ import annotations

import urllib.request

import pytest
from clients_testing import ca_hierarchy, ca_rows, issue, nss_db, require, run
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from enrollment.keystore.ocsp import ocsp_responder_cache_clear
from enrollment.revocation.services import certificate_revoke


@pytest.fixture(autouse=True)
def responder_keys(settings, tmp_path):
    settings.PORTAL_CA_KEY_DIR = tmp_path / "ca-keys"
    ocsp_responder_cache_clear()
    yield
    ocsp_responder_cache_clear()


def responder_certificate(url: str, certificate, issuer):
    """The delegated responder's certificate, from an answer of the portal's (it sends it along)."""
    request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1()).build()
    post = urllib.request.Request(
        url, data=request.public_bytes(Encoding.DER), headers={"Content-Type": "application/ocsp-request"}
    )
    with urllib.request.urlopen(post, timeout=30) as answer:
        response = ocsp.load_der_ocsp_response(answer.read())
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    (responder,) = response.certificates
    return responder


@pytest.mark.parametrize("ca_type", ["rsa", "ec"])
def test_nss_sees_the_revocation_through_ocsp(live_server, pki_material, alice, approver, tmp_path, ca_type):
    from enrollment.models import CertificateAuthority

    CertificateAuthority.objects.all().delete()  # a hierarchy of this CA key type instead
    root, root_key, issuing, issuing_key = ca_hierarchy(ca_type=ca_type, pki_material=pki_material, key_dir=tmp_path)
    ca_rows(root, root_key, issuing, issuing_key, kra=pki_material.kra)
    certificate = issue(alice, approver, "ec-p256")
    url = f"{live_server.url}/ocsp/issuing-ca"

    db, password_file = nss_db(tmp_path / "nssdb")
    for nickname, cert, trust in (
        ("root", root, ",C,"),
        ("issuing", issuing, ",,"),
        ("alice", certificate.x509, ",,"),
        ("responder", responder_certificate(url, certificate.x509, issuing), ",,"),
    ):
        path = tmp_path / f"{nickname}.pem"
        path.write_bytes(cert.public_bytes(Encoding.PEM))
        added = run(
            require("certutil"), "-A", "-d", db, "-f", password_file, "-n", nickname, "-t", trust, "-a", "-i", path
        )
        assert added.returncode == 0, added.stderr

    def status() -> str:
        result = run(require("ocspclnt"), "-S", "alice", "-d", db, "-l", url, "-t", "responder")
        return (result.stdout + result.stderr).strip()

    assert status() == 'Check of certificate "alice" succeeded.'
    certificate_revoke(serial=certificate.serial, actor=None, reason="key_compromise")
    revoked = status()
    assert revoked.startswith('Check of certificate "alice" failed') and "has been revoked" in revoked, revoked
