import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID

from enrollment.pki import ca, keys, lint, profiles
from enrollment.pki.backends import InMemoryKeyBackend


def ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


def test_ca_subject(org):
    name = ca.ca_subject(common_name="Example S/MIME CA", organization=org)
    assert name.rfc4514_string() == (
        "CN=Example S/MIME CA,2.5.4.97=NTRUS\\+CA-1234567,O=Example Widgets Inc.,C=US"
    )
    with pytest.raises(ValueError, match="ISO 3166-1"):
        ca.ca_subject(
            common_name="X", organization=profiles.Organization("X", "NTRUS-1", "Germany")
        )
    with pytest.raises(ValueError, match="common name"):
        ca.ca_subject(common_name=" ", organization=org)


@pytest.mark.parametrize("chain", ["rsa", "ec"])
def test_root_profile(pkis, chain):
    root = pkis[chain].root
    assert root.issuer == root.subject
    root.verify_directly_issued_by(root)
    bc = ext(root, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length is None
    ku = ext(root, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature
    ski = ext(root, x509.SubjectKeyIdentifier).value
    assert ext(root, x509.AuthorityKeyIdentifier).value.key_identifier == ski.digest
    for absent in (x509.ExtendedKeyUsage, x509.CertificatePolicies):
        with pytest.raises(x509.ExtensionNotFound):
            ext(root, absent)
    expected = {
        "rsa": SignatureAlgorithmOID.RSA_WITH_SHA256,
        "ec": SignatureAlgorithmOID.ECDSA_WITH_SHA384,
    }
    assert root.signature_algorithm_oid == expected[chain]


@pytest.mark.parametrize("chain", ["rsa", "ec"])
def test_issuing_ca_profile(pkis, chain):
    pki = pkis[chain]
    issuing = pki.issuing
    issuing.verify_directly_issued_by(pki.root)
    bc = ext(issuing, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = ext(issuing, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert list(ext(issuing, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    assert {p.policy_identifier for p in ext(issuing, x509.CertificatePolicies).value} == set(
        profiles.POLICY_OIDS.values()
    )
    dp = ext(issuing, x509.CRLDistributionPoints).value[0]
    assert dp.full_name[0].value == f"http://pki.example.com/{chain}/root.crl"
    aia = ext(issuing, x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == [f"http://pki.example.com/{chain}/root.cer"]
    assert (
        ext(issuing, x509.AuthorityKeyIdentifier).value.key_identifier
        == ext(pki.root, x509.SubjectKeyIdentifier).value.digest
    )
    assert issuing.not_valid_after_utc <= pki.root.not_valid_after_utc


@pytest.mark.parametrize("chain", ["rsa", "ec"])
@pytest.mark.parametrize("purpose", ["smimesign", "smimeencrypt"])
def test_openssl_verifies_the_chain(
    pkis,
    subscriber_keys,
    subscriber_builder,
    write_pem,
    require_tool,
    run_cli,
    tmp_path,
    chain,
    purpose,
):
    openssl = require_tool("openssl")
    pki = pkis[chain]
    key_type = "rsa-3072" if purpose == "smimeencrypt" else "ec-p384"
    leaf = pki.backend.sign_certificate(
        subscriber_builder(pki, subscriber_keys[key_type].public_key())
    )
    result = run_cli(
        openssl,
        "verify",
        "-x509_strict",
        "-purpose",
        purpose,
        "-CAfile",
        write_pem(tmp_path / "root.pem", pki.root),
        "-untrusted",
        write_pem(tmp_path / "issuing.pem", pki.issuing),
        write_pem(tmp_path / "leaf.pem", leaf),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(": OK")


def test_single_tier_ca_issues_lint_clean_certificates(
    subscriber_keys, subscriber_builder, org, write_pem, require_tool, run_cli, tmp_path
):
    key = keys.generate_private_key("ec-p384")
    cert = ca.self_signed_issuing_certificate(
        key=key, subject=ca.ca_subject(common_name="Example Single CA", organization=org)
    )
    assert ext(cert, x509.BasicConstraints).value.path_length == 0
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA384
    issuer = profiles.IssuerInfo(
        cert, "http://pki.example.com/s.crl", "http://pki.example.com/s.cer"
    )

    class Single:  # the shape subscriber_builder needs
        issuer_info = issuer

    leaf = InMemoryKeyBackend(key).sign_certificate(
        subscriber_builder(Single, subscriber_keys["rsa-3072"].public_key(), "mailbox-strict")
    )
    assert lint.findings_at_or_above(lint.lint_smime_certificate(leaf), "WARNING") == []
    openssl = require_tool("openssl")
    result = run_cli(
        openssl,
        "verify",
        "-x509_strict",
        "-purpose",
        "smimeencrypt",
        "-CAfile",
        write_pem(tmp_path / "ca.pem", cert),
        write_pem(tmp_path / "leaf.pem", leaf),
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def kra_key():
    return rsa.generate_private_key(65537, 2048)


def kra_subject():
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Key Recovery Agent Alice")])


def test_kra_certificate(ec_pki, kra_key, write_pem, require_tool, run_cli, tmp_path):
    builder = ca.kra_certificate_builder(
        public_key=kra_key.public_key(), subject=kra_subject(), issuer=ec_pki.issuer_info
    )
    cert = ec_pki.backend.sign_certificate(builder)
    cert.verify_directly_issued_by(ec_pki.issuing)
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.key_encipherment and ku.value.digital_signature
    assert not ku.value.key_cert_sign
    assert set(ext(cert, x509.ExtendedKeyUsage).value) == {
        ca.KEY_RECOVERY_AGENT_OID,
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
    }
    assert ca.is_key_recovery_agent_certificate(cert)
    assert not ca.is_key_recovery_agent_certificate(ec_pki.issuing)
    assert not ca.is_key_recovery_agent_certificate(ec_pki.root)
    openssl = require_tool("openssl")
    result = run_cli(
        openssl,
        "verify",
        "-x509_strict",
        "-purpose",
        "smimeencrypt",
        "-CAfile",
        write_pem(tmp_path / "root.pem", ec_pki.root),
        "-untrusted",
        write_pem(tmp_path / "issuing.pem", ec_pki.issuing),
        write_pem(tmp_path / "kra.pem", cert),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_subscriber_certificate_is_not_a_kra(ec_pki, subscriber_keys, subscriber_builder):
    cert = ec_pki.backend.sign_certificate(
        subscriber_builder(ec_pki, subscriber_keys["rsa-3072"].public_key())
    )
    assert not ca.is_key_recovery_agent_certificate(cert)


def test_kra_needs_an_rsa_key(ec_pki):
    with pytest.raises(ValueError, match="RSA"):
        ca.kra_certificate_builder(
            public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
            subject=kra_subject(),
            issuer=ec_pki.issuer_info,
        )
