from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from enrollment.pki import profiles

SPONSOR = x509.ObjectIdentifier("2.23.140.1.5.3.3")
MAILBOX = x509.ObjectIdentifier("2.23.140.1.5.1.3")


def ext(cert_or_builder, cls):
    return cert_or_builder.extensions.get_extension_for_class(cls)


def test_catalogues():
    assert profiles.CERTIFICATE_TYPES == {
        "sponsor-strict": "Sponsor-validated (strict)",
        "mailbox-strict": "Mailbox-validated (strict)",
    }
    assert profiles.POLICY_OIDS == {"sponsor-strict": SPONSOR, "mailbox-strict": MAILBOX}
    assert profiles.KEY_USAGES == ("dual", "signing", "encryption")


@pytest.mark.parametrize(
    "raw, normalized",
    [
        ("jane.doe@example.com", "jane.doe@example.com"),
        ("  Jane.Doe@EXAMPLE.Com ", "Jane.Doe@example.com"),
        ("o'brien+smime@mail.example.co.uk", "o'brien+smime@mail.example.co.uk"),
        ("a@b-c.example", "a@b-c.example"),
    ],
)
def test_validate_mailbox_accepts(raw, normalized):
    assert profiles.validate_mailbox(raw) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "jane",
        "jane@@example.com",
        "jane@doe@example.com",
        "@example.com",
        "jane@",
        "jane@localhost",
        "ja ne@example.com",
        "jäne@example.com",
        "jane@exämple.com",
        ".jane@example.com",
        "jane..doe@example.com",
        "jane.@example.com",
        "jane@-example.com",
        "jane@example-.com",
        "jane@example..com",
        "jane@example.com.",
        "jane@192.168.1.1",
        "a" * 65 + "@example.com",
        "jane@" + "a" * 64 + ".com",
        "<jane@example.com>",
    ],
)
def test_validate_mailbox_rejects(raw):
    with pytest.raises(ValueError, match="e-mail address"):
        profiles.validate_mailbox(raw)


@pytest.mark.parametrize(
    "key_type, usage, expected",
    [
        ("rsa-3072", "dual", {"digital_signature", "key_encipherment"}),
        ("rsa-3072", "signing", {"digital_signature", "content_commitment"}),
        ("rsa-3072", "encryption", {"key_encipherment"}),
        ("ec-p256", "dual", {"digital_signature", "key_agreement"}),
        ("ec-p256", "signing", {"digital_signature", "content_commitment"}),
        ("ec-p256", "encryption", {"key_agreement"}),
    ],
)
def test_key_usage_per_key_type_and_usage(
    ec_pki, subscriber_keys, subscriber_builder, key_type, usage, expected
):
    cert = ec_pki.backend.sign_certificate(
        subscriber_builder(ec_pki, subscriber_keys[key_type].public_key(), usage=usage)
    )
    key_usage = ext(cert, x509.KeyUsage)
    assert key_usage.critical
    names = [
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
    ]
    assert {n for n in names if getattr(key_usage.value, n)} == expected


def test_sponsor_certificate_contents(ec_pki, subscriber_keys, subscriber_builder, org):
    not_before = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    public_key = subscriber_keys["rsa-3072"].public_key()
    builder = subscriber_builder(
        ec_pki,
        public_key,
        not_before=not_before,
        validity_days=365,
        serial_number=0x1234567890ABCDEF,
    )
    cert = ec_pki.backend.sign_certificate(builder)

    assert cert.serial_number == 0x1234567890ABCDEF
    assert cert.issuer == ec_pki.issuing.subject
    assert cert.not_valid_before_utc == not_before
    # notAfter is inclusive: exactly 365 days of validity.
    assert cert.not_valid_after_utc - cert.not_valid_before_utc + timedelta(seconds=1) == timedelta(
        days=365
    )

    subject = {a.oid: a.value for a in cert.subject}
    assert subject == {
        NameOID.COUNTRY_NAME: "US",
        NameOID.ORGANIZATION_NAME: org.name,
        NameOID.ORGANIZATION_IDENTIFIER: "NTRUS+CA-1234567",
        NameOID.GIVEN_NAME: "Jane",
        NameOID.SURNAME: "Doe",
        NameOID.COMMON_NAME: "Jane Doe",
        NameOID.EMAIL_ADDRESS: "jane.doe@example.com",
    }
    assert ext(cert, x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    )
    assert ext(cert, x509.SubjectAlternativeName).value.get_values_for_type(x509.RFC822Name) == [
        "jane.doe@example.com"
    ]
    policies = ext(cert, x509.CertificatePolicies).value
    assert [p.policy_identifier for p in policies] == [SPONSOR]
    dps = ext(cert, x509.CRLDistributionPoints).value
    assert [n.value for n in dps[0].full_name] == ["http://pki.example.com/ec/smime.crl"]
    aia = {
        d.access_method: d.access_location.value
        for d in ext(cert, x509.AuthorityInformationAccess).value
    }
    assert aia == {
        x509.AuthorityInformationAccessOID.CA_ISSUERS: "http://pki.example.com/ec/smime.cer",
        x509.AuthorityInformationAccessOID.OCSP: "http://ocsp.example.com/ec",
    }
    aki = ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ext(ec_pki.issuing, x509.SubjectKeyIdentifier).value.digest
    assert aki.authority_cert_issuer is None and aki.authority_cert_serial_number is None
    assert ext(cert, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        public_key
    )
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, x509.BasicConstraints)


def test_mailbox_certificate_subject_is_only_the_mailbox(
    ec_pki, subscriber_keys, subscriber_builder
):
    cert = ec_pki.backend.sign_certificate(
        subscriber_builder(
            ec_pki,
            subscriber_keys["ec-p256"].public_key(),
            certificate_type="mailbox-strict",
            subscriber=profiles.Subscriber("Shared.Box@Example.com"),
        )
    )
    assert [(a.oid, a.value) for a in cert.subject] == [
        (NameOID.COMMON_NAME, "Shared.Box@example.com"),
        (NameOID.EMAIL_ADDRESS, "Shared.Box@example.com"),
    ]
    assert [p.policy_identifier for p in ext(cert, x509.CertificatePolicies).value] == [MAILBOX]


def test_random_serials_are_large_and_distinct(ec_pki, subscriber_keys, subscriber_builder):
    serials = {
        ec_pki.backend.sign_certificate(
            subscriber_builder(ec_pki, subscriber_keys["ec-p256"].public_key())
        ).serial_number
        for _ in range(20)
    }
    assert len(serials) == 20
    assert all(0 < s < 2**159 and s.bit_length() > 64 for s in serials)


def test_no_ocsp_url_means_no_ocsp_access_description(ec_pki, subscriber_keys, subscriber_builder):
    issuer = profiles.IssuerInfo(
        certificate=ec_pki.issuing,
        crl_url="http://a.example/c.crl",
        ca_issuers_url="http://a.example/c.cer",
    )
    cert = ec_pki.backend.sign_certificate(
        subscriber_builder(ec_pki, subscriber_keys["ec-p256"].public_key(), issuer=issuer)
    )
    methods = [d.access_method for d in ext(cert, x509.AuthorityInformationAccess).value]
    assert methods == [x509.AuthorityInformationAccessOID.CA_ISSUERS]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"certificate_type": "individual-strict"}, "unknown certificate type"),
        ({"usage": "everything"}, "unknown key usage"),
        ({"validity_days": 826}, "exceeds the S/MIME maximum of 825 days"),
        ({"validity_days": 0}, "at least one day"),
        ({"subscriber": profiles.Subscriber("jane.doe@example.com")}, "given name and the surname"),
        (
            {"subscriber": profiles.Subscriber("jane.doe@example.com", "Jane", " ")},
            "given name and the surname",
        ),
        ({"subscriber": profiles.Subscriber("", "Jane", "Doe")}, "e-mail address is empty"),
        ({"subscriber": profiles.Subscriber("jane doe@example.com", "Jane", "Doe")}, "white space"),
        ({"organization": profiles.Organization("X", "NTRUS+CA-1", "us")}, "ISO 3166-1"),
        ({"organization": profiles.Organization("X", "NTRUS+CA-1", "XX")}, "ISO 3166-1"),
        ({"organization": profiles.Organization("X", "NTRUS+CA-1", "USA")}, "ISO 3166-1"),
        ({"organization": profiles.Organization("X", "NTRDE-HRB1", "US")}, "does not match"),
        ({"organization": profiles.Organization("X", "1234567", "US")}, "organization identifier"),
        (
            {"organization": profiles.Organization(" ", "NTRUS-1", "US")},
            "organization name is empty",
        ),
        ({"not_before": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"serial_number": 0}, "serial number"),
        ({"serial_number": 2**159}, "serial number"),
    ],
)
def test_bad_input_is_a_readable_value_error(
    ec_pki, subscriber_keys, subscriber_builder, overrides, message
):
    with pytest.raises(ValueError, match=message):
        subscriber_builder(ec_pki, subscriber_keys["ec-p256"].public_key(), **overrides)


def test_global_scheme_identifiers_need_not_match_the_country(
    ec_pki, subscriber_keys, subscriber_builder
):
    org = profiles.Organization("X Corp", "LEIXG-5493001KJTIIGC8Y1R12", "DE")
    builder = subscriber_builder(ec_pki, subscriber_keys["ec-p256"].public_key(), organization=org)
    assert builder is not None


def test_mailbox_type_ignores_the_organization(ec_pki, subscriber_keys, subscriber_builder):
    # Mailbox-validated subjects carry no organization, so its fields are not required.
    builder = subscriber_builder(
        ec_pki,
        subscriber_keys["ec-p256"].public_key(),
        certificate_type="mailbox-strict",
        organization=profiles.Organization("", "", ""),
    )
    assert builder is not None


def test_http_urls_are_required(ec_pki, subscriber_keys, subscriber_builder):
    issuer = profiles.IssuerInfo(
        certificate=ec_pki.issuing,
        crl_url="https://a.example/c.crl",
        ca_issuers_url="http://a.example/c.cer",
    )
    with pytest.raises(ValueError, match="CRL URL must be an http:// URL"):
        subscriber_builder(ec_pki, subscriber_keys["ec-p256"].public_key(), issuer=issuer)


def test_weak_rsa_key_is_refused(ec_pki, subscriber_builder):
    weak = rsa.generate_private_key(65537, 1024).public_key()
    with pytest.raises(ValueError, match="at least 2048 bits"):
        subscriber_builder(ec_pki, weak)


def test_subjects_read_as_openssl_writes_them(ec_pki, subscriber_keys, subscriber_builder, write_pem, run_cli, tmp_path):
    cert = ec_pki.backend.sign_certificate(subscriber_builder(ec_pki, subscriber_keys["ec-p256"].public_key()))
    printed = run_cli(
        "openssl", "x509", "-in", write_pem(tmp_path / "cert.pem", cert), "-noout", "-subject", "-nameopt", "RFC2253"
    ).stdout.strip().removeprefix("subject=")

    text = profiles.name_text(cert.subject)
    assert text == printed
    assert "GN=" in text and "SN=" in text and "organizationIdentifier=" in text and "2.5.4." not in text
