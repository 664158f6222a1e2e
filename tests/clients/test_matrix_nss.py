"""NSS (Thunderbird, and Evolution with Debian's NSS 3.87) against what the portal issued (issue 14).

Per CA key type (RSA, ECDSA) and subscriber key type: both PKCS#12 formats import; the root is not
trusted until the user trusts it for e-mail (certutil -M -t ",C,", the install pages' step); then
the certificates validate as signer and recipient, alice signs and bob verifies (cmsutil), alice
encrypts to bob and bob decrypts, and carol's revocation shows once the portal's CRL is imported.
NSS 3.87 cannot encrypt to an EC recipient nor decrypt what was encrypted to an EC key: asserted
as such, documented on the install page (test_matrix_docs.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from clients_testing import FORMATS, NSS_DB_PASSWORD, PASSPHRASE, nss_db, require, run

from enrollment.pki.keys import KEY_TYPES

MESSAGE = "Quarterly figures, for your eyes only.\n"
NOT_TRUSTED = "Peer's certificate issuer has been marked as not trusted by the user."


@dataclass(frozen=True)
class NssProfile:
    """One person's NSS database (a Thunderbird profile) with their own key imported."""

    db: str
    password_file: Path
    nickname: str  # of the person's own certificate
    directory: Path

    def certutil(self, *args):
        return run(require("certutil"), *args, "-d", self.db, "-f", self.password_file)

    def validate(self, nickname: str, usage: str) -> str:
        """certutil -V's verdict for `usage` S (e-mail signer) or R (e-mail recipient)."""
        result = self.certutil("-V", "-n", nickname, "-u", usage)
        return (result.stdout + result.stderr).strip()

    def cmsutil(self, *args):
        return run(require("cmsutil"), *args, "-d", self.db, "-p", NSS_DB_PASSWORD)


def own_nickname(db: str) -> str:
    listing = run(require("certutil"), "-L", "-d", db)
    rows = [line.rsplit(None, 1)[0].strip() for line in listing.stdout.splitlines() if line.endswith("u,u,u")]
    assert len(rows) == 1, listing.stdout
    return rows[0]


def root_nickname(output) -> str:
    return "Test Root CA" if output.ca_type == "rsa" else "Test EC Root CA"


def profile_with(output, identity, fmt: str, directory: Path) -> NssProfile:
    db, password_file = nss_db(directory)
    bundle = identity.write(directory, fmt)
    result = run(require("pk12util"), "-i", bundle, "-d", db, "-W", PASSPHRASE, "-K", NSS_DB_PASSWORD)
    assert result.returncode == 0 and "PKCS12 IMPORT SUCCESSFUL" in result.stdout + result.stderr, (
        result.stdout + result.stderr
    )
    return NssProfile(db, password_file, own_nickname(db), directory)


def trust_root(profile: NssProfile, output) -> None:
    """The install pages' step: trust the root CA to identify mail users."""
    result = profile.certutil("-M", "-n", root_nickname(output), "-t", ",C,")
    assert result.returncode == 0, result.stderr


def add_correspondent(profile: NssProfile, identity, nickname: str) -> None:
    """A correspondent's certificate, as from the directory or a signed message."""
    result = profile.certutil("-A", "-n", nickname, "-t", ",,", "-a", "-i", identity.write(profile.directory))
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module", params=list(KEY_TYPES))
def key_type(request) -> str:
    return request.param


@pytest.mark.parametrize("fmt", FORMATS)
def test_import_then_trust_the_root(portal_output, key_type, fmt, tmp_path):
    alice = portal_output.identity("alice", key_type)
    profile = profile_with(portal_output, alice, fmt, tmp_path / "alice")
    assert "S/MIME" in profile.nickname and "Alice Archer" in profile.nickname
    listing = run(require("certutil"), "-L", "-d", profile.db).stdout
    assert root_nickname(portal_output) in listing  # the chain came along, untrusted

    # Right after the import NSS refuses the certificate: the root came inside the file.
    assert profile.validate(profile.nickname, "S").endswith(NOT_TRUSTED)
    trust_root(profile, portal_output)
    assert profile.validate(profile.nickname, "S") == "certutil: certificate is valid"
    assert profile.validate(profile.nickname, "R") == "certutil: certificate is valid"


@pytest.fixture(scope="module")
def people(portal_output, key_type, tmp_path_factory):
    """Alice's and bob's Thunderbird profiles (the compatible file, the root trusted), each with
    the other's certificate."""
    directory = tmp_path_factory.mktemp(f"nss-{portal_output.ca_type}-{key_type}")
    alice, bob = (portal_output.identity(name, key_type) for name in ("alice", "bob"))
    profiles = {}
    for identity in (alice, bob):
        profiles[identity.employee] = profile = profile_with(
            portal_output, identity, "compatible", directory / identity.employee
        )
        trust_root(profile, portal_output)
    add_correspondent(profiles["alice"], bob, "bob")
    add_correspondent(profiles["bob"], alice, "alice")
    (directory / "message.txt").write_text(MESSAGE)
    return profiles, directory


def test_each_validates_the_other_as_signer_and_recipient(people):
    profiles, _ = people
    assert profiles["alice"].validate("bob", "R") == "certutil: certificate is valid"
    assert profiles["bob"].validate("alice", "S") == "certutil: certificate is valid"


def test_alice_signs_and_bob_verifies(people):
    profiles, directory = people
    signed = directory / "signed.p7m"
    result = profiles["alice"].cmsutil("-S", "-N", profiles["alice"].nickname, "-G", "-P", "-i",
                                       directory / "message.txt", "-o", signed)  # fmt: skip
    assert result.returncode == 0, result.stderr
    verified = profiles["bob"].cmsutil("-D", "-i", signed)
    assert verified.returncode == 0 and verified.stdout == MESSAGE, verified.stderr

    tampered = directory / "tampered.p7m"
    tampered.write_bytes(signed.read_bytes().replace(b"Quarterly", b"Quarterlx"))
    refused = profiles["bob"].cmsutil("-D", "-i", tampered)
    assert refused.returncode != 0 and "SEC_ERROR_PKCS7_BAD_SIGNATURE" in refused.stderr, refused.stderr


def test_alice_encrypts_to_bob(people, key_type):
    profiles, directory = people
    encrypted = directory / "encrypted.p7m"
    result = profiles["alice"].cmsutil("-E", "-r", "bob@example.org", "-i", directory / "message.txt", "-o", encrypted)
    if key_type.startswith("rsa"):
        assert result.returncode == 0, result.stderr
        decrypted = profiles["bob"].cmsutil("-D", "-i", encrypted)
        assert decrypted.returncode == 0 and decrypted.stdout == MESSAGE, decrypted.stderr
    else:
        # NSS 3.87's limitation: no key agreement recipients (ECDH), so no encryption to EC keys.
        assert "cannot create CMS recipientInfo object" in result.stdout + result.stderr
        assert "SEC_ERROR_INVALID_ALGORITHM" in result.stderr
        assert not encrypted.exists() or encrypted.stat().st_size == 0


def test_bob_decrypts_what_openssl_encrypted_to_him(people, portal_output, key_type):
    """The other half for EC keys: a message from a client that can encrypt to EC (openssl cms)."""
    profiles, directory = people
    encrypted = directory / "from-openssl.p7m"
    bob = portal_output.identity("bob", key_type)
    made = run(require("openssl"), "cms", "-encrypt", "-aes256", "-in", directory / "message.txt",
               "-outform", "DER", "-out", encrypted, bob.write(directory))  # fmt: skip
    assert made.returncode == 0, made.stderr
    decrypted = profiles["bob"].cmsutil("-D", "-i", encrypted)
    if key_type.startswith("rsa"):
        assert decrypted.returncode == 0 and decrypted.stdout == MESSAGE, decrypted.stderr
    else:
        # NSS 3.87 cannot parse a key agreement recipient: the employee cannot read the message.
        assert decrypted.returncode != 0 and "SEC_ERROR_BAD_DER" in decrypted.stderr, decrypted.stderr


def test_the_served_crl_revokes_carol(portal_output, tmp_path):
    profile = profile_with(portal_output, portal_output.identity("alice", "rsa-3072"), "compatible", tmp_path / "a")
    trust_root(profile, portal_output)
    add_correspondent(profile, portal_output.revoked, "carol")
    assert profile.validate("carol", "R") == "certutil: certificate is valid"  # no CRL yet

    files = portal_output.write_ca_files(tmp_path)
    imported = run(
        require("crlutil"), "-I", "-d", profile.db, "-f", profile.password_file, "-t", "1", "-i", files["crl"]
    )
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert profile.validate("carol", "R").endswith("Peer's Certificate has been revoked.")
    assert profile.validate("carol", "S").endswith("Peer's Certificate has been revoked.")
    assert profile.validate(profile.nickname, "S") == "certutil: certificate is valid"
