import pytest
from cryptography.hazmat.primitives import serialization

from enrollment.pki import pkcs12

PASSPHRASE = "correct horse battery staple"

EXPECTED_INFO = {
    "modern": ("PBES2, PBKDF2, AES-256-CBC", "MAC: sha256"),
    "compatible": ("pbeWithSHA1And3-KeyTripleDES-CBC", "MAC: sha1"),
}


@pytest.fixture(scope="module")
def subscriber(rsa_pki, subscriber_keys, subscriber_builder):
    key = subscriber_keys["rsa-3072"]
    return key, rsa_pki.backend.sign_certificate(subscriber_builder(rsa_pki, key.public_key()))


def test_formats_catalogue():
    assert set(pkcs12.PKCS12_FORMATS) == {"modern", "compatible"}
    assert pkcs12.MIN_PASSPHRASE_LENGTH == 12


@pytest.mark.parametrize("fmt", ["modern", "compatible"])
def test_openssl_reads_both_formats(rsa_pki, subscriber, require_tool, run_cli, tmp_path, fmt):
    openssl = require_tool("openssl")
    key, cert = subscriber
    data = pkcs12.pkcs12_bundle(
        key=key,
        certificate=cert,
        chain=[rsa_pki.issuing, rsa_pki.root],
        friendly_name="Jane Doe (S/MIME 2026)",
        passphrase=PASSPHRASE,
        fmt=fmt,
    )
    path = tmp_path / f"{fmt}.p12"
    path.write_bytes(data)

    result = run_cli(
        openssl, "pkcs12", "-in", path, "-passin", f"pass:{PASSPHRASE}", "-nodes", "-info"
    )
    assert result.returncode == 0, result.stderr
    info = result.stderr + result.stdout  # -info writes the algorithm lines to stderr
    algorithm, mac = EXPECTED_INFO[fmt]
    assert f"Shrouded Keybag: {algorithm}" in info
    assert f"PKCS7 Encrypted data: {algorithm}" in info
    assert mac in info
    assert "friendlyName: Jane Doe (S/MIME 2026)" in result.stdout
    assert result.stdout.count("-----BEGIN CERTIFICATE-----") == 3

    # The key openssl extracted is the certificate's key.
    pem_key = result.stdout[result.stdout.index("-----BEGIN PRIVATE KEY-----") :]
    extracted = serialization.load_pem_private_key(pem_key.encode(), password=None)
    assert extracted.public_key() == cert.public_key()

    wrong = run_cli(
        openssl, "pkcs12", "-in", path, "-passin", "pass:wrong passphrase!", "-nodes", "-info"
    )
    assert wrong.returncode != 0
    assert "BEGIN PRIVATE KEY" not in wrong.stdout


@pytest.mark.parametrize("fmt", ["modern", "compatible"])
def test_load_pkcs12_round_trip(rsa_pki, subscriber, fmt):
    key, cert = subscriber
    data = pkcs12.pkcs12_bundle(
        key=key,
        certificate=cert,
        chain=[rsa_pki.issuing, rsa_pki.root],
        friendly_name="Jäne Doe",
        passphrase=PASSPHRASE,
        fmt=fmt,
    )
    loaded = pkcs12.load_pkcs12(data, PASSPHRASE)
    assert loaded.key.private_numbers() == key.private_numbers()
    assert loaded.cert.certificate == cert
    assert loaded.cert.friendly_name == "Jäne Doe".encode()
    assert [c.certificate for c in loaded.additional_certs] == [rsa_pki.issuing, rsa_pki.root]
    assert [c.friendly_name for c in loaded.additional_certs] == [
        b"Example rsa S/MIME CA",
        b"Example rsa Root CA",
    ]
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(data, "not the passphrase")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"fmt": "legacy"}, "unknown PKCS#12 format"),
        ({"passphrase": "elevenchars"}, "at least 12 characters"),
        ({"friendly_name": "  "}, "friendly name"),
    ],
)
def test_bad_input(rsa_pki, subscriber, overrides, message):
    key, cert = subscriber
    arguments = dict(
        key=key,
        certificate=cert,
        chain=[rsa_pki.issuing],
        friendly_name="Jane",
        passphrase=PASSPHRASE,
        fmt="modern",
    )
    arguments.update(overrides)
    with pytest.raises(ValueError, match=message):
        pkcs12.pkcs12_bundle(**arguments)


def test_key_must_match_certificate(rsa_pki, subscriber, subscriber_keys):
    _, cert = subscriber
    with pytest.raises(ValueError, match="does not belong"):
        pkcs12.pkcs12_bundle(
            key=subscriber_keys["ec-p256"],
            certificate=cert,
            chain=[],
            friendly_name="Jane",
            passphrase=PASSPHRASE,
        )
