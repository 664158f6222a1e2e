"""Real clients read our PKCS#12 bundles: NSS (Thunderbird, Firefox) via pk12util/certutil.

In CI a missing tool fails the test; elsewhere it is skipped.
"""

import os
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509

from enrollment.pki import ca, keys, pkcs12, profiles
from enrollment.pki.backends import InMemoryKeyBackend

ORG = profiles.Organization("Example Widgets Inc.", "NTRUS+CA-1234567", "US")
PASSPHRASE = "Tr0ub4dor & 3 staples"
DB_PASSWORD = "nss-db-password"
FRIENDLY_NAME = "Jäne Doe (S/MIME)"


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is required in CI but not installed")
        pytest.skip(f"{tool} is not installed")
    return path


def run(*args) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, errors="replace", timeout=120
    )


@pytest.fixture(scope="module")
def pki():
    root_key = keys.generate_private_key("ec-p384")
    root = ca.create_root_certificate(
        key=root_key, subject=ca.ca_subject(common_name="Example Client Root CA", organization=ORG)
    )
    issuing_key = keys.generate_private_key("ec-p256")
    issuing = InMemoryKeyBackend(root_key).sign_certificate(
        ca.issuing_ca_builder(
            public_key=issuing_key.public_key(),
            subject=ca.ca_subject(common_name="Example Client S/MIME CA", organization=ORG),
            issuer=profiles.IssuerInfo(
                root, "http://pki.example.com/r.crl", "http://pki.example.com/r.cer"
            ),
        )
    )
    info = profiles.IssuerInfo(
        issuing, "http://pki.example.com/i.crl", "http://pki.example.com/i.cer"
    )
    return InMemoryKeyBackend(issuing_key), info, [issuing, root]


@pytest.fixture(scope="module", params=["rsa-3072", "ec-p256"])
def subscriber(request, pki):
    backend, info, _ = pki
    key = keys.generate_private_key(request.param)
    cert = backend.sign_certificate(
        profiles.smime_certificate_builder(
            certificate_type="sponsor-strict",
            subscriber=profiles.Subscriber("jane.doe@example.com", "Jäne", "Doe"),
            organization=ORG,
            issuer=info,
            public_key=key.public_key(),
            not_before=datetime.now(timezone.utc) - timedelta(minutes=1),
        )
    )
    return key, cert


def nss_db(tmp_path: Path) -> tuple[str, Path]:
    certutil = require("certutil")
    directory = tmp_path / "nssdb"
    directory.mkdir()
    password_file = tmp_path / "dbpass.txt"
    password_file.write_text(DB_PASSWORD + "\n")
    result = run(certutil, "-N", "-d", f"sql:{directory}", "-f", password_file)
    assert result.returncode == 0, result.stderr
    return f"sql:{directory}", password_file


def trust_by_nickname(listing: str) -> dict[str, str]:
    """Parse `certutil -L`: a header, then "<nickname>   <trust flags>" per certificate."""
    rows = {}
    for line in listing.splitlines():
        parts = line.rsplit(None, 1)
        if len(parts) == 2 and "," in parts[1] and not line.startswith(" "):
            rows[parts[0].strip()] = parts[1]
    return rows


@pytest.mark.parametrize("fmt", ["modern", "compatible"])
def test_nss_imports_the_bundle(pki, subscriber, tmp_path, fmt):
    pk12util, certutil = require("pk12util"), require("certutil")
    _, _, chain = pki
    key, cert = subscriber
    bundle = tmp_path / f"{fmt}.p12"
    bundle.write_bytes(
        pkcs12.pkcs12_bundle(
            key=key,
            certificate=cert,
            chain=chain,
            friendly_name=FRIENDLY_NAME,
            passphrase=PASSPHRASE,
            fmt=fmt,
        )
    )
    db, password_file = nss_db(tmp_path)

    result = run(pk12util, "-i", bundle, "-d", db, "-W", PASSPHRASE, "-K", DB_PASSWORD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PKCS12 IMPORT SUCCESSFUL" in result.stdout + result.stderr

    listing = run(certutil, "-L", "-d", db)
    assert listing.returncode == 0, listing.stderr
    nicknames = trust_by_nickname(listing.stdout)
    # "u,u,u": NSS holds the private key for this certificate.
    assert nicknames[FRIENDLY_NAME] == "u,u,u"
    # The chain came along, named after the CAs' common names.
    assert {"Example Client S/MIME CA", "Example Client Root CA"} <= set(nicknames)

    exported = run(certutil, "-L", "-d", db, "-n", FRIENDLY_NAME, "-a")
    assert exported.returncode == 0, exported.stderr
    assert x509.load_pem_x509_certificate(exported.stdout.encode()) == cert

    key_listing = run(certutil, "-K", "-d", db, "-f", password_file)
    assert key_listing.returncode == 0, key_listing.stderr
    assert FRIENDLY_NAME in key_listing.stdout


def test_nss_rejects_a_wrong_passphrase(pki, subscriber, tmp_path):
    pk12util = require("pk12util")
    _, _, chain = pki
    key, cert = subscriber
    bundle = tmp_path / "modern.p12"
    bundle.write_bytes(
        pkcs12.pkcs12_bundle(
            key=key,
            certificate=cert,
            chain=chain,
            friendly_name=FRIENDLY_NAME,
            passphrase=PASSPHRASE,
        )
    )
    db, _ = nss_db(tmp_path)
    result = run(pk12util, "-i", bundle, "-d", db, "-W", "not the passphrase", "-K", DB_PASSWORD)
    assert result.returncode != 0
    assert "SUCCESSFUL" not in result.stdout + result.stderr
