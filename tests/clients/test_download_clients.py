"""What an employee downloads from the portal's page, imported by the clients' own engines (issue 14, 3 and 4).

gpgsm 2.2 (KMail, Kleopatra), NSS pk12util (Thunderbird, Evolution) and OpenSSL 3 (Mutt) import
the files the download page hands out for portal-issued certificates. gpgsm's refusal of the
modern file is asserted as the limitation it is, so that a change in the output shows here.
"""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from portal_testing import PASSWORD, require_tool

from enrollment.services.requests import certificate_request_approve, certificate_request_create

PASSPHRASE = "Tr0ub4dor & 3 staples"
NSS_DB_PASSWORD = "nss-db-password"
LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def run(*args, env=None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, errors="replace", timeout=120, env=env, input=stdin
    )


def _issue(alice, approver, *, key_type: str, key_separation: bool, settings) -> dict:
    settings.PORTAL_KEY_SEPARATION = key_separation
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type=key_type)
    request = certificate_request_approve(request_id=request.pk, approver=approver)
    assert request.state == "issued", request.reason
    return {c.usage: c for c in request.certificates.all()}


@pytest.fixture
def alice_client(client, alice):
    assert client.login(username="alice", password=PASSWORD)
    return client


def _page_choice(client, certificate, user_agent: str) -> str:
    page = client.get(f"/certificates/{certificate.serial}/pkcs12/", HTTP_USER_AGENT=user_agent).content.decode()
    return re.search(r'<input type="radio" name="format" value="([^"]+)"[^>]*checked', page).group(1)


def _download(client, certificate, fmt: str, path: Path) -> Path:
    response = client.post(
        f"/certificates/{certificate.serial}/pkcs12/",
        {"passphrase": PASSPHRASE, "passphrase_again": PASSPHRASE, "format": fmt},
    )
    assert response.status_code == 200, response.content[:500]
    if fmt == "mobileconfig":
        payloads = {p["PayloadType"]: p for p in plistlib.loads(response.content)["PayloadContent"]}
        path.write_bytes(payloads["com.apple.security.pkcs12"]["PayloadContent"])
    else:
        assert response["Content-Type"] == "application/x-pkcs12"
        path.write_bytes(response.content)
    return path


@pytest.fixture
def gnupg_home():
    """A throw-away GnuPG home (short path: the agent's socket lives there); its agent is stopped afterwards."""
    gpgsm = require_tool("gpgsm")
    home = tempfile.mkdtemp(prefix="gs", dir="/tmp")
    os.chmod(home, 0o700)
    env = {**os.environ, "GNUPGHOME": home}
    yield gpgsm, env
    gpgconf = shutil.which("gpgconf")
    if gpgconf:
        run(gpgconf, "--kill", "all", env=env)
    shutil.rmtree(home, ignore_errors=True)


def gpgsm_import(gnupg_home, path: Path) -> tuple[bool, str]:
    gpgsm, env = gnupg_home
    result = run(
        gpgsm, "--batch", "--disable-dirmngr", "--pinentry-mode", "loopback", "--passphrase-fd", "0",
        "--import", path, env=env, stdin=PASSPHRASE + "\n",
    )
    output = result.stdout + result.stderr
    # The exit code also reports the CA lookups gpgsm cannot make offline; the key is what counts.
    return "secret keys imported: 1" in output, output


def gpgsm_secret_serials(gnupg_home) -> str:
    gpgsm, env = gnupg_home
    return run(gpgsm, "--batch", "--disable-dirmngr", "--list-secret-keys", env=env).stdout


# --- gpgsm (KMail, Kleopatra) ----------------------------------------------------------------------


def test_a_linux_desktop_is_offered_the_file_gpgsm_imports(pki, alice, approver, settings, alice_client, gnupg_home, tmp_path):
    dual = _issue(alice, approver, key_type="rsa-3072", key_separation=False, settings=settings)["dual"]
    choice = _page_choice(alice_client, dual, LINUX_FIREFOX)
    assert choice == "compatible"  # the old page pre-selected "modern", which gpgsm cannot read

    imported, output = gpgsm_import(gnupg_home, _download(alice_client, dual, choice, tmp_path / "alice.p12"))
    assert imported, output
    assert dual.serial.replace(":", "").upper().lstrip("0") in gpgsm_secret_serials(gnupg_home).replace(":", "")


def test_gpgsm_refuses_the_modern_file_and_the_signing_key_is_not_lost_to_it(
    pki, alice, approver, settings, alice_client, gnupg_home, tmp_path
):
    signing = _issue(alice, approver, key_type="rsa-3072", key_separation=True, settings=settings)["signing"]

    imported, output = gpgsm_import(gnupg_home, _download(alice_client, signing, "modern", tmp_path / "modern.p12"))
    # gpgsm 2.2's known limitation: no PBES2 (documented on the download page).
    assert not imported and "pkcs5PBES2-params" in output, output
    # The one-time signing key is still there: the employee downloads the compatible file (old code: a 410).
    imported, output = gpgsm_import(
        gnupg_home, _download(alice_client, signing, "compatible", tmp_path / "compatible.p12")
    )
    assert imported, output


# --- NSS (Thunderbird, Evolution) and OpenSSL (Mutt) read both formats and the profile's PKCS#12 ----------


@pytest.fixture(params=["rsa-3072", "ec-p256"])
def dual_use(request, pki, alice, approver, settings):
    return _issue(alice, approver, key_type=request.param, key_separation=False, settings=settings)["dual"]


@pytest.mark.parametrize("fmt", ["compatible", "modern", "mobileconfig"])
def test_nss_imports_every_file(dual_use, alice_client, tmp_path, fmt):
    pk12util, certutil = require_tool("pk12util"), require_tool("certutil")
    bundle = _download(alice_client, dual_use, fmt, tmp_path / "alice.p12")
    directory = tmp_path / "nssdb"
    directory.mkdir()
    password_file = tmp_path / "dbpass.txt"
    password_file.write_text(NSS_DB_PASSWORD + "\n")
    assert run(certutil, "-N", "-d", f"sql:{directory}", "-f", password_file).returncode == 0

    result = run(pk12util, "-i", bundle, "-d", f"sql:{directory}", "-W", PASSPHRASE, "-K", NSS_DB_PASSWORD)
    assert result.returncode == 0 and "PKCS12 IMPORT SUCCESSFUL" in result.stdout + result.stderr, result.stderr
    keys = run(certutil, "-K", "-d", f"sql:{directory}", "-f", password_file)
    assert keys.returncode == 0 and "S/MIME" in keys.stdout, keys.stdout + keys.stderr


@pytest.mark.parametrize("fmt", ["compatible", "modern", "mobileconfig"])
def test_openssl_imports_every_file(dual_use, alice_client, tmp_path, fmt):
    openssl = require_tool("openssl")
    bundle = _download(alice_client, dual_use, fmt, tmp_path / "alice.p12")
    result = run(openssl, "pkcs12", "-in", bundle, "-passin", f"pass:{PASSPHRASE}", "-nodes")
    assert result.returncode == 0, result.stderr
    assert "PRIVATE KEY-----" in result.stdout
    assert result.stdout.count("BEGIN CERTIFICATE") == 3  # alice, the issuing CA, the root
