"""Revocations mark the CRL stale; one CRL is signed per batch, and the CRL served is never stale (issue 13).

Counted by signatures, not by time: N revocations in one transaction (an offboarding) used
to sign N CRLs, each reading every revoked certificate (quadratic).
"""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from django.db import transaction

from enrollment.models import Certificate, CertificateAuthority
from enrollment.pki.backends import EncryptedFileKeyBackend
from enrollment.pki.ocsp import issuer_hashes
from enrollment.revocation.ocsp import ocsp_respond
from enrollment.revocation.services import certificate_revoke, crl_current, crls_refresh

BATCH = 4


@pytest.fixture
def crl_signatures(monkeypatch):
    signed = []
    original = EncryptedFileKeyBackend.sign_crl

    def counting(self, builder):
        signed.append(builder)
        return original(self, builder)

    monkeypatch.setattr(EncryptedFileKeyBackend, "sign_crl", counting)
    return signed


@pytest.fixture
def certificates(pki, alice, approver):
    from enrollment.services.requests import certificate_request_approve, certificate_request_create

    issued = []
    for _ in range(BATCH):
        request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
        issued.append(certificate_request_approve(request_id=request.pk, approver=approver).certificate)
    return issued


def _served_serials(client, slug: str = "issuing-ca") -> set[int]:
    response = client.get(f"/pki/{slug}.crl")
    assert response.status_code == 200
    return {entry.serial_number for entry in x509.load_der_x509_crl(response.content)}


def _ocsp_status(pki, certificate) -> ocsp.OCSPCertStatus:
    name_hash, key_hash = issuer_hashes(pki["issuing"].certificate, hashes.SHA1())
    request = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        name_hash, key_hash, int(certificate.serial, 16), hashes.SHA1()
    )
    der = ocsp_respond(ca_slug="issuing-ca", request_der=request.build().public_bytes(Encoding.DER))
    return ocsp.load_der_ocsp_response(der).certificate_status


def test_a_batch_of_revocations_signs_one_crl_and_the_served_crl_has_them_all(
    pki, certificates, approver, client, crl_signatures
):
    _served_serials(client)  # a current CRL to start from
    crl_signatures.clear()
    with transaction.atomic():  # one batch, as an offboarding or an identity change is
        for certificate in certificates:
            certificate_revoke(serial=certificate.serial, actor=approver, reason="cessation_of_operation")
    assert crl_signatures == [], "a revocation re-signed the whole CRL in its transaction"
    assert CertificateAuthority.objects.get(pk=pki["issuing"].pk).crl_stale_since is not None
    # OCSP reads the rows: revoked at once, before any CRL is signed.
    assert {_ocsp_status(pki, c) for c in certificates} == {ocsp.OCSPCertStatus.REVOKED}
    assert _served_serials(client) >= {int(c.serial, 16) for c in certificates}
    assert len(crl_signatures) == 1
    assert _served_serials(client) >= {int(c.serial, 16) for c in certificates}
    assert len(crl_signatures) == 1, "a CRL that was current was signed again"
    assert CertificateAuthority.objects.get(pk=pki["issuing"].pk).crl_stale_since is None


def test_separate_revocations_sign_nothing_until_the_crl_is_served(pki, certificates, approver, client, crl_signatures):
    for certificate in certificates:  # each in its own transaction, as the admin's bulk action does
        certificate_revoke(serial=certificate.serial, actor=approver, reason="superseded")
    assert crl_signatures == []
    assert _served_serials(client) == {int(c.serial, 16) for c in certificates}
    assert len(crl_signatures) == 1


def test_offboarding_a_person_with_many_certificates_signs_no_crl(pki, certificates, alice, approver, crl_signatures):
    from enrollment.services.employees import employee_offboard

    revoked = employee_offboard(user=alice, actor=approver)
    assert len(revoked) == BATCH and crl_signatures == []
    crl = x509.load_der_x509_crl(crl_current(ca=pki["issuing"]))  # the caller's CA object predates it all
    assert {entry.serial_number for entry in crl} == {int(c.serial, 16) for c in certificates}
    assert len(crl_signatures) == 1


def test_a_revocation_after_the_crl_was_served_is_on_the_next_one(pki, certificates, approver, client, crl_signatures):
    first, second = certificates[:2]
    certificate_revoke(serial=first.serial, actor=approver, reason="superseded")
    assert _served_serials(client) == {int(first.serial, 16)}
    certificate_revoke(serial=second.serial, actor=approver, reason="key_compromise")
    assert _served_serials(client) == {int(first.serial, 16), int(second.serial, 16)}
    assert len(crl_signatures) == 2


def test_the_periodic_job_reissues_a_stale_crl_once(pki, certificates, approver, crl_signatures):
    crls_refresh()  # both CAs get their first CRL
    crl_signatures.clear()
    certificate_revoke(serial=certificates[0].serial, actor=approver, reason="superseded")
    assert [ca.slug for ca in crls_refresh()] == ["issuing-ca"]
    assert crls_refresh() == []
    ca = CertificateAuthority.objects.get(pk=pki["issuing"].pk)
    assert int(certificates[0].serial, 16) in {entry.serial_number for entry in x509.load_der_x509_crl(ca.crl_der)}
    assert len(crl_signatures) == 1
    assert Certificate.objects.get(pk=certificates[0].pk).status == Certificate.Status.REVOKED


def test_a_crl_signed_with_sha1_is_refused_and_not_stored(pki, certificates, approver, monkeypatch):
    """SMC016 at signing: were a key backend (an HSM mechanism) to sign the CRL with SHA-1, nothing is published."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from pyasn1.codec.der import decoder, encoder
    from pyasn1.type import univ
    from pyasn1_modules import rfc5280

    from core.exceptions import ConfigurationError

    original = EncryptedFileKeyBackend.sign_crl

    def sha1_signing(self, builder):
        # OpenSSL here no longer signs with SHA-1; an HSM might. Only the algorithm is judged, so
        # the CRL is signed as usual and then labelled sha1WithRSA / ecdsa-with-SHA1.
        sha1 = "1.2.840.113549.1.1.5" if isinstance(self._private_key(), rsa.RSAPrivateKey) else "1.2.840.10045.4.1"
        document, _ = decoder.decode(original(self, builder).public_bytes(Encoding.DER), asn1Spec=rfc5280.CertificateList())
        document["tbsCertList"]["signature"]["algorithm"] = univ.ObjectIdentifier(sha1)
        document["signatureAlgorithm"]["algorithm"] = univ.ObjectIdentifier(sha1)
        return x509.load_der_x509_crl(encoder.encode(document))

    certificate_revoke(serial=certificates[0].serial, actor=approver, reason="key_compromise")
    ca = CertificateAuthority.objects.get(slug="issuing-ca")
    before = (ca.crl_number, bytes(ca.crl_der or b""), ca.crl_stale_since)
    monkeypatch.setattr(EncryptedFileKeyBackend, "sign_crl", sha1_signing)

    with pytest.raises(ConfigurationError, match="smc016_sha1_signature"):
        crl_current(ca=ca)

    ca.refresh_from_db()
    assert (ca.crl_number, bytes(ca.crl_der or b""), ca.crl_stale_since) == before
    assert ca.crl_stale_since is not None  # still owed: the next good signature publishes it
