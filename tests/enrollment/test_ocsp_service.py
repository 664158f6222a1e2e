"""The OCSP responder service against the test CA: status lookup, signers, responder certificates."""

from __future__ import annotations

import stat
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID
from django.utils import timezone
from portal_testing import TEST_BASE_URL

from audit.models import AuditEvent
from enrollment.keystore.ocsp import ocsp_responder_cache_clear, ocsp_responder_current, responder_directory
from enrollment.models import Certificate
from enrollment.pki.backends import InMemoryKeyBackend
from enrollment.pki.keys import generate_private_key
from enrollment.pki.lint import findings_at_or_above, lint_smime_certificate
from enrollment.pki.profiles import Subscriber, smime_certificate_builder
from enrollment.revocation.ocsp import ocsp_respond
from enrollment.services.authorities import issuer_info, organization_from_settings


@pytest.fixture(autouse=True)
def responder_dir(settings, tmp_path):
    """Each test starts without a responder certificate (its own key directory)."""
    settings.PORTAL_CA_KEY_DIR = tmp_path / "ca-keys"
    ocsp_responder_cache_clear()
    yield settings.PORTAL_CA_KEY_DIR
    ocsp_responder_cache_clear()


def request_for(certificate: x509.Certificate, issuer: x509.Certificate, *, algorithm=None, nonce=None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, algorithm or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


def ask(certificate, issuer, *, slug="issuing-ca", **kwargs) -> ocsp.OCSPResponse:
    return ocsp.load_der_ocsp_response(ocsp_respond(ca_slug=slug, request_der=request_for(certificate, issuer, **kwargs)))


def unknown_certificate(pki) -> x509.Certificate:
    """Signed by the test issuing CA, but never recorded in the database."""
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


def verify_signature(response: ocsp.OCSPResponse, signer: x509.Certificate) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    key = signer.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm))
    else:
        key.verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(), response.signature_hash_algorithm)


def test_issued_certificates_name_the_responder_and_stay_lint_clean(issued):
    cert = issued.x509
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    urls = {d.access_method: d.access_location.value for d in aia}
    assert urls[AuthorityInformationAccessOID.OCSP] == f"{TEST_BASE_URL}/ocsp/issuing-ca"
    assert urls[AuthorityInformationAccessOID.CA_ISSUERS] == f"{TEST_BASE_URL}/pki/issuing-ca.crt"
    assert findings_at_or_above(lint_smime_certificate(cert), "WARNING") == []


def test_ocsp_url_left_out_when_disabled(pki, settings):
    settings.PORTAL_OCSP_ENABLED = False
    assert issuer_info(pki["issuing"]).ocsp_url is None
    settings.PORTAL_OCSP_ENABLED = True
    assert issuer_info(pki["issuing"]).ocsp_url == f"{TEST_BASE_URL}/ocsp/issuing-ca"
    # The root's key may be offline: what it signs (the issuing CA) names no responder.
    assert issuer_info(pki["root"]).ocsp_url is None


def test_good_revoked_and_unknown(pki, issued):
    issuing = pki["issuing"].certificate
    response = ask(issued.x509, issuing)
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == issued.x509.serial_number

    revoked_at = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    Certificate.objects.filter(pk=issued.pk).update(
        status=Certificate.Status.REVOKED, revoked_at=revoked_at, revocation_reason="key_compromise"
    )
    response = ask(issued.x509, issuing)
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_time_utc == revoked_at
    assert response.revocation_reason is x509.ReasonFlags.key_compromise

    # Marked expired later, it stays revoked: revocation is final.
    Certificate.objects.filter(pk=issued.pk).update(status=Certificate.Status.EXPIRED)
    assert ask(issued.x509, issuing).certificate_status is ocsp.OCSPCertStatus.REVOKED

    stranger = unknown_certificate(pki)
    response = ask(stranger, issuing)
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status is ocsp.OCSPCertStatus.UNKNOWN


def test_unspecified_reason_is_left_out(pki, issued):
    Certificate.objects.filter(pk=issued.pk).update(
        status=Certificate.Status.REVOKED, revoked_at=timezone.now(), revocation_reason="unspecified"
    )
    response = ask(issued.x509, pki["issuing"].certificate)
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is None


def test_the_key_recovery_agent_and_the_issuing_ca_are_good(pki):
    # Certificates the CAs signed that are no Certificate rows.
    agent = pki["agent"].certificate
    assert ask(agent, pki["issuing"].certificate).certificate_status is ocsp.OCSPCertStatus.GOOD
    issuing = pki["issuing"].certificate
    response = ask(issuing, pki["root"].certificate, slug="root-ca")
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD


def test_delegated_responder_signs_and_is_stored_encrypted(pki, issued, responder_dir):
    issuing = pki["issuing"].certificate
    response = ask(issued.x509, issuing, nonce=b"n" * 16)
    assert len(response.certificates) == 1
    responder = response.certificates[0]
    assert responder.issuer == issuing.subject
    responder.verify_directly_issued_by(issuing)
    assert list(responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.OCSP_SIGNING
    ]
    responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    lifetime = responder.not_valid_after_utc - responder.not_valid_before_utc
    assert timedelta(days=29) < lifetime <= timedelta(days=30, minutes=5)
    assert response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(responder.public_key()).digest
    assert response.responder_name is None
    verify_signature(response, responder)
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"n" * 16

    directory = responder_directory(pki["issuing"])
    assert directory.is_relative_to(responder_dir)
    stem = format(responder.serial_number, "x")
    key_file = directory / f"{stem}.key.pem"
    assert b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert x509.load_pem_x509_certificate((directory / f"{stem}.crt.pem").read_bytes()) == responder
    assert AuditEvent.objects.filter(action="ocsp.responder_issued").count() == 1

    # The next request reuses it, also in a fresh process (empty cache: read from disk).
    ocsp_responder_cache_clear()
    again = ask(issued.x509, issuing)
    assert again.certificates[0] == responder
    assert AuditEvent.objects.filter(action="ocsp.responder_issued").count() == 1


def test_responder_is_renewed_before_it_expires(pki):
    ca = pki["issuing"]
    first, _ = ocsp_responder_current(ca=ca)
    assert ocsp_responder_current(ca=ca, now=timezone.now() + timedelta(days=15))[0] == first
    # A third of its 30 days left: a new one, and responses are signed with it.
    later = timezone.now() + timedelta(days=21)
    second, backend = ocsp_responder_current(ca=ca, now=later)
    assert second.serial_number != first.serial_number
    assert second.not_valid_after_utc > first.not_valid_after_utc
    assert second.not_valid_before_utc <= later
    assert AuditEvent.objects.filter(action="ocsp.responder_issued").count() == 2
    response = ocsp.load_der_ocsp_response(
        ocsp_respond(ca_slug="issuing-ca", request_der=request_for(pki["agent"].certificate, ca.certificate), now=later)
    )
    assert response.certificates == [second]
    verify_signature(response, second)


def test_ca_signer(pki, issued, settings):
    settings.PORTAL_OCSP_SIGNER = "ca"
    issuing = pki["issuing"].certificate
    response = ask(issued.x509, issuing)
    assert response.certificates == []
    assert response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(issuing.public_key()).digest
    verify_signature(response, issuing)
    assert not AuditEvent.objects.filter(action="ocsp.responder_issued").exists()


def test_validity_and_sha256_cert_ids(pki, issued, settings):
    settings.PORTAL_OCSP_VALIDITY_HOURS = 8
    response = ask(issued.x509, pki["issuing"].certificate, algorithm=hashes.SHA256())
    assert response.hash_algorithm.name == "sha256"
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    # The SBR count the interval inclusively: nextUpdate - thisUpdate + 1 s = 8 hours.
    assert response.next_update_utc - response.this_update_utc == timedelta(hours=8) - timedelta(seconds=1)
    assert abs(response.this_update_utc - timezone.now()) < timedelta(minutes=1)


@pytest.mark.parametrize("garbage", [b"", b"\x30\x03\x02\x01\x01", b"not DER at all" * 50, b"\x00" * 20000])
def test_malformed_requests(pki, garbage):
    response = ocsp.load_der_ocsp_response(ocsp_respond(ca_slug="issuing-ca", request_der=garbage))
    assert response.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_requests_for_a_ca_we_do_not_serve(pki, issued):
    issuing = pki["issuing"].certificate
    assert ask(issued.x509, issuing, slug="no-such-ca").response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    # The root's responder does not answer for what the issuing CA signed.
    assert ask(issued.x509, issuing, slug="root-ca").response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    # A CA whose key is not here (an imported parent) is not served either.
    pki["root"].key_reference = ""
    pki["root"].save()
    response = ask(issuing, pki["root"].certificate, slug="root-ca")
    assert response.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_responses_pass_pkilint(pki, issued, pkilint, settings):
    issuing = pki["issuing"].certificate
    Certificate.objects.filter(pk=issued.pk).update(
        status=Certificate.Status.REVOKED, revoked_at=timezone.now(), revocation_reason="superseded"
    )
    answers = [
        ocsp_respond(ca_slug="issuing-ca", request_der=request_for(issued.x509, issuing, nonce=b"x" * 32)),
        ocsp_respond(ca_slug="issuing-ca", request_der=request_for(unknown_certificate(pki), issuing)),
        ocsp_respond(ca_slug="issuing-ca", request_der=request_for(pki["agent"].certificate, issuing)),
        ocsp_respond(ca_slug="issuing-ca", request_der=b"junk"),
        ocsp_respond(ca_slug="nope", request_der=request_for(issued.x509, issuing)),
    ]
    settings.PORTAL_OCSP_SIGNER = "ca"
    answers.append(ocsp_respond(ca_slug="issuing-ca", request_der=request_for(issued.x509, issuing)))
    for der in answers:
        code, output = pkilint("lint_ocsp_response", der, args=("lint", "-s", "WARNING", "--document-format", "DER"))
        assert code == 0 and output.strip() == "", output
