"""The portal's own checks of SBR v1.0.12-v1.0.16 (pkilint 0.13.3 knows v1.0.11 only). No Django.

SMC016: no SHA-1 signatures on certificates or CRLs; SMC017v2: new CA keys RSA >= 4096 or
ECDSA, and from 15 Sep 2027 no subscriber issuance from an RSA CA key < 3072; SMC018: from
1 Jul 2027 only emailProtection (and optionally clientAuth) in CA and subscriber EKUs.
Each dated rule is tested on both sides of its date.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import univ
from pyasn1_alt_modules import rfc5280

from enrollment.pki import ca, crl, lint

BEFORE_SMC018 = lint.SMC018_EKU_RESTRICTION - timedelta(seconds=1)
FROM_SMC018 = lint.SMC018_EKU_RESTRICTION
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.12")


SHA1_WITH_RSA = univ.ObjectIdentifier("1.2.840.113549.1.1.5")


def resigned_with_sha1(der: bytes, spec, tbs_field: str, key) -> bytes:
    """The certificate or CRL re-signed with sha1WithRSAEncryption (cryptography no longer signs SHA-1)."""
    document, _ = decoder.decode(der, asn1Spec=spec)
    document[tbs_field]["signature"]["algorithm"] = SHA1_WITH_RSA
    document["signatureAlgorithm"]["algorithm"] = SHA1_WITH_RSA
    tbs = encoder.encode(document[tbs_field])
    document["signature"] = univ.BitString.fromOctetString(key.sign(tbs, padding.PKCS1v15(), hashes.SHA1()))
    return encoder.encode(document)


def codes(findings) -> list[str]:
    return [f.code for f in findings]


def with_eku(builder: x509.CertificateBuilder, usages) -> x509.CertificateBuilder:
    """The builder with its extKeyUsage replaced."""
    rebuilt = (
        x509.CertificateBuilder()
        .subject_name(builder._subject_name)
        .issuer_name(builder._issuer_name)
        .public_key(builder._public_key)
        .serial_number(builder._serial_number)
        .not_valid_before(builder._not_valid_before)
        .not_valid_after(builder._not_valid_after)
    )
    for extension in builder._extensions:
        if not isinstance(extension.value, x509.ExtendedKeyUsage):
            rebuilt = rebuilt.add_extension(extension.value, critical=extension.critical)
    return rebuilt.add_extension(x509.ExtendedKeyUsage(usages), critical=False)


# --- SMC016 ----------------------------------------------------------------------------------


def test_sha1_signed_certificate_is_refused(rsa_pki, subscriber_keys, subscriber_builder):
    builder = subscriber_builder(rsa_pki, subscriber_keys["rsa-3072"].public_key())
    sha256 = builder.sign(rsa_pki.issuing_key, hashes.SHA256())
    sha1 = x509.load_der_x509_certificate(
        resigned_with_sha1(sha256.public_bytes(Encoding.DER), rfc5280.Certificate(), "tbsCertificate", rsa_pki.issuing_key)
    )
    assert isinstance(sha1.signature_hash_algorithm, hashes.SHA1)

    findings = lint.sbr_certificate_findings(sha1)
    assert codes(findings) == ["portal.sbr.smc016_sha1_signature"]
    assert lint.blocking_findings(findings) == findings
    assert lint.sbr_certificate_findings(sha256) == []


def test_sha1_signed_crl_is_refused(rsa_pki):
    now = datetime.now(timezone.utc)
    builder = crl.crl_builder(
        issuer_certificate=rsa_pki.issuing, entries=[], crl_number=1, this_update=now, next_update=now + timedelta(days=7)
    )
    sha256 = builder.sign(rsa_pki.issuing_key, hashes.SHA256())
    sha1 = x509.load_der_x509_crl(
        resigned_with_sha1(sha256.public_bytes(Encoding.DER), rfc5280.CertificateList(), "tbsCertList", rsa_pki.issuing_key)
    )
    assert isinstance(sha1.signature_hash_algorithm, hashes.SHA1)
    assert codes(lint.sbr_crl_findings(sha1)) == ["portal.sbr.smc016_sha1_signature"]
    assert lint.sbr_crl_findings(sha256) == []


# --- SMC017v2 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key_type, refused_after",
    [("rsa-3072", True), ("rsa-4096", False), ("ec-p256", False), ("ec-p384", False)],
)
def test_new_ca_keys_are_rsa_4096_or_ecdsa_from_15_september_2026(key_type, refused_after):
    before = lint.SMC017_NEW_CA_KEYS - timedelta(seconds=1)
    assert lint.new_ca_key_refusal(key_type, at=before) is None
    refusal = lint.new_ca_key_refusal(key_type, at=lint.SMC017_NEW_CA_KEYS)
    assert bool(refusal) is refused_after
    if refusal:
        assert "at least 4096 bits or ECDSA" in refusal and "SMC017v2" in refusal and "rsa-3072" in refusal


def test_no_subscriber_issuance_from_a_small_rsa_ca_key_from_15_september_2027():
    small = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    before = lint.SMC017_SUBSCRIBER_ISSUANCE - timedelta(seconds=1)
    assert lint.issuing_key_findings(small, at=before) == []
    assert codes(lint.issuing_key_findings(small, at=lint.SMC017_SUBSCRIBER_ISSUANCE)) == [
        "portal.sbr.smc017_issuing_ca_key_too_small"
    ]


def test_rsa_3072_and_ec_issuing_keys_may_still_issue(pkis):
    for pki in pkis.values():
        assert lint.issuing_key_findings(pki.issuing_key.public_key(), at=lint.SMC017_SUBSCRIBER_ISSUANCE) == []


# --- SMC018 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "usages, refused_from_2027_07_01",
    [
        ([ExtendedKeyUsageOID.EMAIL_PROTECTION], False),
        ([ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH], False),
        ([ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING], True),
        ([ExtendedKeyUsageOID.CLIENT_AUTH], True),
    ],
)
def test_subscriber_eku_from_1_july_2027(ec_pki, subscriber_keys, subscriber_builder, usages, refused_from_2027_07_01):
    builder = with_eku(subscriber_builder(ec_pki, subscriber_keys["ec-p256"].public_key()), usages)
    certificate = ec_pki.backend.sign_certificate(builder)

    assert lint.sbr_certificate_findings(certificate, at=BEFORE_SMC018) == []
    after = lint.sbr_certificate_findings(certificate, at=FROM_SMC018)
    assert codes(after) == (["portal.sbr.smc018_extended_key_usage"] if refused_from_2027_07_01 else [])


def test_the_pre_issuance_lint_applies_smc018_at_the_issuance_date(ec_pki, subscriber_keys, subscriber_builder):
    builder = with_eku(
        subscriber_builder(ec_pki, subscriber_keys["ec-p256"].public_key()),
        [ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING],
    )
    ca_key = ec_pki.issuing_key.public_key()
    before = lint.blocking_findings(lint.lint_before_signing(builder, ca_public_key=ca_key, at=BEFORE_SMC018))
    after = lint.blocking_findings(lint.lint_before_signing(builder, ca_public_key=ca_key, at=FROM_SMC018))
    assert "portal.sbr.smc018_extended_key_usage" not in codes(before)
    assert "portal.sbr.smc018_extended_key_usage" in codes(after)


def test_the_portals_own_profiles_pass_after_every_date(pkis, subscriber_keys, subscriber_builder):
    """The subscriber and CA certificates the portal builds meet SMC016-SMC018 already."""
    late = max(lint.SMC018_EKU_RESTRICTION, lint.SMC017_SUBSCRIBER_ISSUANCE)
    for pki in pkis.values():
        for certificate in (pki.root, pki.issuing):
            assert lint.sbr_certificate_findings(certificate, at=late) == []
        for usage in ("dual", "signing", "encryption"):
            builder = subscriber_builder(pki, subscriber_keys["ec-p256"].public_key(), usage=usage)
            findings = lint.lint_before_signing(builder, ca_public_key=pki.issuing_key.public_key(), at=late)
            assert lint.blocking_findings(findings) == []
    self_signed = ca.self_signed_issuing_certificate(
        key=pkis["ec"].issuing_key, subject=pkis["ec"].issuing.subject
    )
    assert lint.sbr_certificate_findings(self_signed, at=late) == []
