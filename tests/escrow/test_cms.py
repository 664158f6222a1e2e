"""Escrow envelopes: CMS EnvelopedData that openssl (disaster recovery) can open. No Django."""

import os
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from enrollment.pki import ca, keys, profiles
from enrollment.pki.backends import InMemoryKeyBackend
from escrow import cms

ORG = profiles.Organization("Example Widgets Inc.", "NTRUS+CA-1234567", "US")


def require_openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("openssl is required in CI but not installed")
        pytest.skip("openssl is not installed")
    return path


@pytest.fixture(scope="module")
def issuing():
    key = ec.generate_private_key(ec.SECP256R1())
    cert = ca.self_signed_issuing_certificate(
        key=key, subject=ca.ca_subject(common_name="Example Escrow Test CA", organization=ORG)
    )
    return key, cert


def make_agent(issuing, name: str):
    ca_key, ca_cert = issuing
    key = rsa.generate_private_key(65537, 2048)
    cert = InMemoryKeyBackend(ca_key).sign_certificate(
        ca.kra_certificate_builder(
            public_key=key.public_key(),
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"KRA {name}")]),
            issuer=profiles.IssuerInfo(
                ca_cert, "http://pki.example.com/e.crl", "http://pki.example.com/e.cer"
            ),
        )
    )
    return key, cert


@pytest.fixture(scope="module")
def agents(issuing):
    return [make_agent(issuing, "Alice"), make_agent(issuing, "Bob")]


@pytest.fixture(scope="module")
def outsider(issuing):
    return make_agent(issuing, "Mallory")


@pytest.fixture(scope="module")
def escrowed_key():
    # What the portal escrows: a subscriber key as PKCS#8 DER (binary, with \n and \r bytes).
    return keys.private_key_to_der(keys.generate_private_key("ec-p384")) + b"\n\r\n\x00"


@pytest.fixture(scope="module")
def envelope_der(agents, escrowed_key):
    return cms.envelope(data=escrowed_key, recipients=[cert for _, cert in agents])


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_every_agent_can_open_it(agents, envelope_der, escrowed_key):
    for key, cert in agents:
        assert (
            cms.open_envelope(envelope_der=envelope_der, certificate=cert, private_key=key)
            == escrowed_key
        )


def test_another_agent_cannot_open_it(envelope_der, outsider):
    key, cert = outsider
    with pytest.raises(ValueError):
        cms.open_envelope(envelope_der=envelope_der, certificate=cert, private_key=key)


def test_openssl_decrypts_for_each_recipient(agents, envelope_der, escrowed_key, tmp_path):
    openssl = require_openssl()
    envelope_path = write(tmp_path / "record.der", envelope_der)
    for i, (key, cert) in enumerate(agents):
        cert_path = write(tmp_path / f"agent{i}.pem", cert.public_bytes(serialization.Encoding.PEM))
        key_path = write(
            tmp_path / f"agent{i}.key",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        out = tmp_path / f"out{i}.der"
        result = subprocess.run(
            [
                openssl,
                "cms",
                "-decrypt",
                "-inform",
                "DER",
                "-in",
                envelope_path,
                "-recip",
                cert_path,
                "-inkey",
                key_path,
                "-out",
                out,
            ],
            capture_output=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert out.read_bytes() == escrowed_key


def test_openssl_rejects_the_wrong_agent(envelope_der, outsider, tmp_path):
    openssl = require_openssl()
    key, cert = outsider
    result = subprocess.run(
        [
            openssl,
            "cms",
            "-decrypt",
            "-inform",
            "DER",
            "-in",
            write(tmp_path / "r.der", envelope_der),
            "-recip",
            write(tmp_path / "m.pem", cert.public_bytes(serialization.Encoding.PEM)),
            "-inkey",
            write(
                tmp_path / "m.key",
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            ),
        ],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode != 0


def test_content_encryption_is_aes_256_cbc(envelope_der, tmp_path):
    openssl = require_openssl()
    result = subprocess.run(
        [
            openssl,
            "cms",
            "-cmsout",
            "-print",
            "-inform",
            "DER",
            "-in",
            write(tmp_path / "r.der", envelope_der),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "contentType: pkcs7-data" in result.stdout
    assert "algorithm: aes-256-cbc" in result.stdout
    assert result.stdout.count("d.ktri:") == 2


def test_recipient_serials(agents, envelope_der):
    # RecipientInfos is a DER SET OF: the order is the encoding's, not the argument order.
    assert sorted(cms.envelope_recipient_serials(envelope_der)) == sorted(
        (cert.issuer.rfc4514_string(), cert.serial_number) for _, cert in agents
    )


def test_recipient_serials_with_escaped_names(issuing, escrowed_key):
    ca_key, _ = issuing
    # An issuer name that needs RFC 4514 escaping, and a multi-valued RDN.
    odd_issuer = x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "US")]),
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Widgets, Inc. + Co"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "PKI"),
                ]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "#Agents=CA")]),
        ]
    )
    key = rsa.generate_private_key(65537, 2048)
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agent")]))
        .issuer_name(odd_issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    envelope_der = cms.envelope(data=escrowed_key, recipients=[cert])
    # Compare with the issuer as encoded (DER sorts the multi-valued RDN's members).
    assert cms.envelope_recipient_serials(envelope_der) == [
        (cert.issuer.rfc4514_string(), cert.serial_number)
    ]
    assert "O=Widgets\\, Inc. \\+ Co" in cert.issuer.rfc4514_string()


def test_recipients_are_required(escrowed_key):
    with pytest.raises(ValueError, match="at least one recipient"):
        cms.envelope(data=escrowed_key, recipients=[])


def test_ec_recipients_are_refused(issuing, escrowed_key):
    _, ec_cert = issuing
    with pytest.raises(ValueError, match="RSA"):
        cms.envelope(data=escrowed_key, recipients=[ec_cert])


def test_recipient_serials_rejects_non_cms():
    with pytest.raises(ValueError):
        cms.envelope_recipient_serials(b"\x30\x03\x02\x01\x00")
    with pytest.raises(ValueError):
        cms.envelope_recipient_serials(b"not der at all")
