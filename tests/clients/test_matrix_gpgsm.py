"""gpgsm 2.2 (KMail, Kleopatra) against what the portal issued (issue 14).

gpgsm checks every certificate against its CA's CRL through dirmngr, which fetches the URL in the
certificate: here dirmngr's HTTP proxy is a small server that hands out the CRLs the portal served
(/pki/<slug>.crl), so the check is the real one. The limitations asserted as such, and documented
on the install pages: the modern PKCS#12 is refused (`pkcs5PBES2-params`), importing an EC key
from PKCS#12 crashes gpgsm, EC recipients are refused ("Wrong key usage"), and the CRL of an
ECDSA CA cannot be checked at all, so under an ECDSA CA even RSA certificates are unusable.
"""

from __future__ import annotations

import http.server
import threading
from urllib.parse import urlsplit

import pytest
from clients_testing import FORMATS, PASSPHRASE, run, sha1_fingerprint

from enrollment.pki import pkcs12
from enrollment.pki.keys import KEY_TYPES

MESSAGE = "Quarterly figures, for your eyes only.\n"
CRL_BROKEN = "checking the CRL failed: Provided object is too short"


def gpgsm(home, *args, stdin: str | None = None, crl_checks: bool = True):
    program, env = home
    options = ["--batch", "--pinentry-mode", "loopback"]
    if stdin is not None:
        options += ["--passphrase-fd", "0"]
    if not crl_checks:
        options += ["--disable-crl-checks", "--disable-dirmngr"]
    result = run(program, *options, *args, env=env, stdin=stdin, timeout=60)
    return result.returncode, result.stdout + result.stderr


def import_bundle(home, identity, fmt: str, tmp_path) -> tuple[bool, str]:
    _, output = gpgsm(home, "--import", identity.write(tmp_path, fmt), stdin=PASSPHRASE + "\n", crl_checks=False)
    return "secret keys imported: 1" in output, output


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("key_type", list(KEY_TYPES))
def test_import(portal_output, gnupg_homes, key_type, fmt, tmp_path):
    imported, output = import_bundle(gnupg_homes(), portal_output.identity("alice", key_type), fmt, tmp_path)
    if fmt == "modern":
        assert not imported and 'encryptedData error at "pkcs5PBES2-params"' in output, output
    elif key_type.startswith("ec"):
        assert not imported and "signal Segmentation fault caught" in output, output
    else:
        assert imported, output


class _CrlServer(http.server.BaseHTTPRequestHandler):
    crls: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 - http.server's name
        slug = urlsplit(self.path).path.rsplit("/", 1)[-1].removesuffix(".crl")
        body = self.crls.get(slug)
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/pkix-crl")
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def crl_proxy(portal_output):
    """dirmngr's HTTP proxy: what it fetches from the certificates' CRL URLs is the portal's CRL."""
    handler = type("Handler", (_CrlServer,), {"crls": portal_output.crls})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def kleopatra(portal_output, gnupg_homes, crl_proxy, tmp_path_factory):
    """Alice's gpgsm with her RSA key, bob's, carol's and bob's EC certificates; the root not yet trusted."""
    home = gnupg_homes()
    directory = tmp_path_factory.mktemp(f"gpgsm-{portal_output.ca_type}")
    (directory / "message.txt").write_text(MESSAGE)
    with open(f"{home[1]['GNUPGHOME']}/dirmngr.conf", "w") as conf:
        conf.write(f"http-proxy {crl_proxy}\n")
    imported, output = import_bundle(home, portal_output.identity("alice", "rsa-3072"), "compatible", directory)
    assert imported, output
    others = [
        portal_output.identity("bob", "rsa-3072"),
        portal_output.identity("bob", "ec-p256"),
        portal_output.revoked,
    ]
    code, output = gpgsm(home, "--import", *(o.write(directory) for o in others), crl_checks=False)
    assert code == 0, output
    return home, directory


def fingerprint(identity) -> str:
    return sha1_fingerprint(identity.certificate).replace(":", "")


def trust_the_root(home, portal_output) -> None:
    """The install page's step: the root's fingerprint and S in trustlist.txt."""
    with open(f"{home[1]['GNUPGHOME']}/trustlist.txt", "w") as trustlist:
        trustlist.write(f"{sha1_fingerprint(portal_output.root)} S\n")
    run("gpgconf", "--reload", "gpg-agent", env=home[1])


def validation(home, identity, **options) -> str:
    return gpgsm(home, "--with-validation", "--list-keys", fingerprint(identity), **options)[1]


def test_root_trust_then_crl_checks(kleopatra, portal_output):
    home, _ = kleopatra
    alice, bob = portal_output.identity("alice", "rsa-3072"), portal_output.identity("bob", "rsa-3072")
    assert "root certificate is not marked trusted" in validation(home, alice, crl_checks=False)
    trust_the_root(home, portal_output)
    assert "[certificate is good]" in validation(home, alice, crl_checks=False)

    if portal_output.ca_type == "rsa":
        assert "[certificate is good]" in validation(home, bob)
        carol = validation(home, portal_output.revoked)
        assert "[certificate has been revoked]" in carol and "[certificate is good]" not in carol, carol
    else:
        # gpgsm 2.2 cannot check a CRL signed with ECDSA: every certificate of the CA fails, RSA included.
        for identity in (alice, bob, portal_output.revoked):
            output = validation(home, identity)
            assert CRL_BROKEN in output and "[certificate is good]" not in output, output


def test_sign_and_verify(kleopatra, portal_output):
    home, directory = kleopatra
    trust_the_root(home, portal_output)
    alice = portal_output.identity("alice", "rsa-3072")
    signed = directory / "signed.p7m"
    signed.unlink(missing_ok=True)
    code, output = gpgsm(home, "-u", fingerprint(alice), "-o", signed, "--sign", directory / "message.txt",
                         stdin=PASSPHRASE + "\n", crl_checks=False)  # fmt: skip
    assert code == 0, output
    code, output = gpgsm(home, "--verify", signed, crl_checks=portal_output.ca_type == "rsa")
    assert code == 0 and 'Good signature from "/CN=Alice Archer' in output, output
    if portal_output.ca_type == "ec":
        code, output = gpgsm(home, "--verify", signed)
        assert code != 0 and CRL_BROKEN in output, output


def test_encrypt_and_decrypt(kleopatra, portal_output):
    home, directory = kleopatra
    trust_the_root(home, portal_output)
    bob_ec = portal_output.identity("bob", "ec-p256")
    alice = portal_output.identity("alice", "rsa-3072")
    encrypted = directory / "to-alice.p7m"
    encrypted.unlink(missing_ok=True)
    code, output = gpgsm(home, "-r", fingerprint(alice), "-o", encrypted, "--encrypt", directory / "message.txt")
    if portal_output.ca_type == "ec":
        assert code != 0 and CRL_BROKEN in output, output  # the CRL again
        code, output = gpgsm(home, "-r", fingerprint(alice), "-o", encrypted, "--encrypt", directory / "message.txt",
                             crl_checks=False)  # fmt: skip
    assert code == 0, output
    code, output = gpgsm(home, "-o", "-", "--decrypt", encrypted, stdin=PASSPHRASE + "\n", crl_checks=False)
    assert code == 0 and MESSAGE in output, output

    code, output = gpgsm(home, "-r", fingerprint(bob_ec), "-o", directory / "to-bob-ec.p7m", "--encrypt",
                         directory / "message.txt", crl_checks=False)  # fmt: skip
    assert code != 0 and "Wrong key usage" in output, output


@pytest.mark.parametrize("length, imported", [(31, True), (32, False)])
def test_a_passphrase_of_more_than_31_characters_is_refused(portal_output, gnupg_homes, tmp_path, length, imported):
    """gpgsm 2.2 builds the PKCS#12 key from the first 64 bytes of the passphrase (31 characters
    and the terminator, in UTF-16): a longer passphrase is "bad" (the install page and the
    download form say so)."""
    alice = portal_output.identity("alice", "rsa-3072")
    bundle = pkcs12.load_pkcs12(alice.bundles["compatible"], PASSPHRASE)
    passphrase = ("correct horse battery staple " * 2)[:length]
    path = tmp_path / "long.p12"
    path.write_bytes(pkcs12.pkcs12_bundle(
        key=bundle.key, certificate=bundle.cert.certificate, chain=[], friendly_name="Alice",
        passphrase=passphrase, fmt="compatible",
    ))
    _, output = gpgsm(gnupg_homes(), "--import", path, stdin=passphrase + "\n", crl_checks=False)
    assert ("secret keys imported: 1" in output) is imported, output
