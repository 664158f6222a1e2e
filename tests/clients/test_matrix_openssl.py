"""OpenSSL 3.0 (Mutt, scripts) against what the portal issued (issue 14).

Per CA key type and subscriber key type: both PKCS#12 formats open; the certificates verify
against the root given with -CAfile (OpenSSL's trust step) as signer and as recipient; alice
signs and bob verifies, alice encrypts to bob and bob decrypts (`openssl cms`); carol is revoked
in the portal's CRL (-crl_check). The limitations asserted as such (and on the install page):
`openssl smime` neither encrypts to nor decrypts for EC keys, and OpenSSL's smimeencrypt purpose
check wants keyEncipherment, which an EC certificate (keyAgreement) does not have.
"""

from __future__ import annotations

import pytest
from clients_testing import FORMATS, PASSPHRASE, require, run

from enrollment.pki.keys import KEY_TYPES

MESSAGE = "Quarterly figures, for your eyes only.\n"


@pytest.fixture(scope="module", params=list(KEY_TYPES))
def key_type(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def files(portal_output, key_type, tmp_path_factory):
    """The CA files, alice's and bob's certificates and keys (from the compatible file), a message."""
    directory = tmp_path_factory.mktemp(f"openssl-{portal_output.ca_type}-{key_type}")
    paths = portal_output.write_ca_files(directory)
    for name in ("alice", "bob"):
        identity = portal_output.identity(name, key_type)
        paths[name] = identity.write(directory)
        key = directory / f"{name}.key"
        result = run(require("openssl"), "pkcs12", "-in", identity.write(directory, "compatible"), "-passin",
                     f"pass:{PASSPHRASE}", "-nodes", "-nocerts", "-out", key)  # fmt: skip
        assert result.returncode == 0, result.stderr
        paths[f"{name}_key"] = key
    paths["message"] = directory / "message.txt"
    paths["message"].write_text(MESSAGE)
    return paths


def openssl(*args):
    return run(require("openssl"), *args)


@pytest.mark.parametrize("fmt", FORMATS)
def test_both_files_open(portal_output, key_type, fmt, tmp_path):
    alice = portal_output.identity("alice", key_type)
    result = openssl("pkcs12", "-in", alice.write(tmp_path, fmt), "-passin", f"pass:{PASSPHRASE}", "-nodes")
    assert result.returncode == 0, result.stderr
    assert "PRIVATE KEY-----" in result.stdout
    assert result.stdout.count("BEGIN CERTIFICATE") == 3  # alice, the issuing CA, the root


def verify(files, certificate, *extra):
    result = openssl("verify", "-CAfile", files["root"], "-untrusted", files["issuing"], *extra, certificate)
    return result.returncode, result.stdout + result.stderr


def test_validation_as_signer_and_recipient(files, key_type):
    assert verify(files, files["alice"], "-purpose", "smimesign")[0] == 0
    code, output = verify(files, files["bob"], "-purpose", "smimeencrypt")
    if key_type.startswith("rsa"):
        assert code == 0, output
    else:
        # OpenSSL's smimeencrypt purpose demands keyEncipherment; an EC key agrees keys instead.
        assert code != 0 and "unsuitable certificate purpose" in output, output
    assert verify(files, files["bob"])[0] == 0
    untrusted = openssl("verify", "-untrusted", files["issuing"], files["bob"])  # the root not given
    assert untrusted.returncode != 0 and "unable to get local issuer certificate" in untrusted.stdout + untrusted.stderr


def test_alice_signs_and_bob_verifies(files, tmp_path):
    signed = tmp_path / "signed.p7m"
    made = openssl("cms", "-sign", "-nodetach", "-in", files["message"], "-signer", files["alice"], "-inkey", files["alice_key"],
                   "-certfile", files["issuing"], "-outform", "DER", "-out", signed)  # fmt: skip
    assert made.returncode == 0, made.stderr
    checked = openssl("cms", "-verify", "-inform", "DER", "-in", signed, "-CAfile", files["root"],
                      "-purpose", "smimesign")  # fmt: skip
    assert checked.returncode == 0 and checked.stdout == MESSAGE, checked.stderr
    assert "Verification successful" in checked.stderr
    untrusted = openssl("cms", "-verify", "-inform", "DER", "-in", signed, "-CAfile", files["issuing"])
    assert untrusted.returncode != 0  # the issuing CA alone is no trust anchor


def test_alice_encrypts_to_bob(files, key_type, tmp_path):
    encrypted = tmp_path / "encrypted.p7m"
    made = openssl(
        "cms", "-encrypt", "-aes256", "-in", files["message"], "-outform", "DER", "-out", encrypted, files["bob"]
    )
    assert made.returncode == 0, made.stderr
    opened = openssl("cms", "-decrypt", "-inform", "DER", "-in", encrypted, "-recip", files["bob"],
                     "-inkey", files["bob_key"])  # fmt: skip
    assert opened.returncode == 0 and opened.stdout == MESSAGE, opened.stderr

    # `openssl smime` (PKCS#7) is what Mutt's default configuration calls.
    legacy = openssl("smime", "-decrypt", "-inform", "DER", "-in", encrypted, "-recip", files["bob"],
                     "-inkey", files["bob_key"])  # fmt: skip
    legacy_made = openssl("smime", "-encrypt", "-aes256", "-in", files["message"], "-outform", "DER",
                          "-out", tmp_path / "legacy.p7m", files["bob"])  # fmt: skip
    if key_type.startswith("rsa"):
        assert legacy.returncode == 0 and legacy.stdout == MESSAGE, legacy.stderr
        assert legacy_made.returncode == 0, legacy_made.stderr
    else:
        assert legacy.returncode != 0 and "Field=d.enveloped, Type=PKCS7" in legacy.stderr, legacy.stderr
        assert legacy_made.returncode != 0
        assert "encryption not supported for this key type" in legacy_made.stderr, legacy_made.stderr


def test_the_served_crl_revokes_carol(portal_output, tmp_path):
    files = portal_output.write_ca_files(tmp_path)
    carol = portal_output.revoked.write(tmp_path)
    alice = portal_output.identity("alice", "ec-p256").write(tmp_path)
    crls = tmp_path / "crls.pem"
    for name in ("crl", "root_crl"):
        converted = openssl("crl", "-inform", "DER", "-in", files[name])
        assert converted.returncode == 0, converted.stderr
        crls.write_text((crls.read_text() if crls.exists() else "") + converted.stdout)

    for extra in (("-crl_check",), ("-crl_check_all",)):
        code, output = verify(files, carol, "-CRLfile", crls, *extra)
        assert code != 0 and "certificate revoked" in output, output
        code, output = verify(files, alice, "-CRLfile", crls, *extra)
        assert code == 0, output
