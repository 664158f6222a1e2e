"""Session-scoped test PKI (keys are slow to generate on small CI machines). No Django."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pkilint_testing import is_pkilint_tool, pkilint_in_process, run_console_script

from enrollment.pki import ca, keys, profiles
from enrollment.pki.backends import InMemoryKeyBackend
from enrollment.pki.keys import PrivateKey

ORG = profiles.Organization(name="Example Widgets Inc.", organization_identifier="NTRUS+CA-1234567", country="US")
BIN = Path(sys.executable).parent  # the venv's console scripts (pkilint CLIs)


@dataclass(frozen=True)
class Pki:
    name: str
    root_key: PrivateKey
    root: x509.Certificate
    issuing_key: PrivateKey
    issuing: x509.Certificate
    issuer_info: profiles.IssuerInfo

    @property
    def backend(self) -> InMemoryKeyBackend:
        return InMemoryKeyBackend(self.issuing_key)


def build_pki(name: str, root_key_type: str, issuing_key_type: str) -> Pki:
    root_key = keys.generate_private_key(root_key_type)
    root = ca.create_root_certificate(
        key=root_key, subject=ca.ca_subject(common_name=f"Example {name} Root CA", organization=ORG)
    )
    root_info = profiles.IssuerInfo(
        certificate=root,
        crl_url=f"http://pki.example.com/{name}/root.crl",
        ca_issuers_url=f"http://pki.example.com/{name}/root.cer",
    )
    issuing_key = keys.generate_private_key(issuing_key_type)
    issuing = InMemoryKeyBackend(root_key).sign_certificate(
        ca.issuing_ca_builder(
            public_key=issuing_key.public_key(),
            subject=ca.ca_subject(common_name=f"Example {name} S/MIME CA", organization=ORG),
            issuer=root_info,
        )
    )
    issuer_info = profiles.IssuerInfo(
        certificate=issuing,
        crl_url=f"http://pki.example.com/{name}/smime.crl",
        ca_issuers_url=f"http://pki.example.com/{name}/smime.cer",
        ocsp_url=f"http://ocsp.example.com/{name}",
    )
    return Pki(name, root_key, root, issuing_key, issuing, issuer_info)


@pytest.fixture(scope="session")
def rsa_pki() -> Pki:
    return build_pki("rsa", "rsa-4096", "rsa-3072")


@pytest.fixture(scope="session")
def ec_pki() -> Pki:
    return build_pki("ec", "ec-p384", "ec-p256")


@pytest.fixture(scope="session")
def pkis(rsa_pki: Pki, ec_pki: Pki) -> dict[str, Pki]:
    return {"rsa": rsa_pki, "ec": ec_pki}


@pytest.fixture(scope="session")
def subscriber_keys() -> dict[str, PrivateKey]:
    return {key_type: keys.generate_private_key(key_type) for key_type in keys.KEY_TYPES}


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)


def _subscriber_builder(
    pki: Pki,
    public_key,
    certificate_type: str = "sponsor-strict",
    usage: str = "dual",
    **overrides,
) -> x509.CertificateBuilder:
    arguments = dict(
        certificate_type=certificate_type,
        subscriber=profiles.Subscriber("jane.doe@example.com", "Jane", "Doe"),
        organization=ORG,
        issuer=pki.issuer_info,
        public_key=public_key,
        not_before=_now(),
        usage=usage,
    )
    arguments.update(overrides)
    return profiles.smime_certificate_builder(**arguments)


def _write_pem(path: Path, obj) -> Path:
    if isinstance(obj, x509.CertificateRevocationList):
        path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    elif isinstance(obj, x509.Certificate):
        path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    else:  # private key
        path.write_bytes(
            obj.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return path


def _require_tool(name: str) -> str:
    """Path of an external tool; in CI a missing tool is a failure, not a silent skip."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI but not installed")
        pytest.skip(f"{name} is not installed")
    return path


def _run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """A command line; pkilint's linters run in this process (tests/pkilint_testing.py)."""
    if is_pkilint_tool(args[0]):
        return pkilint_in_process(*args)
    return run_console_script(*args)


# Helpers as fixtures: test modules must not import conftest (module name clashes).
@pytest.fixture(scope="session")
def org() -> profiles.Organization:
    return ORG


@pytest.fixture(scope="session")
def now():
    return _now


@pytest.fixture(scope="session")
def subscriber_builder():
    return _subscriber_builder


@pytest.fixture(scope="session")
def write_pem():
    return _write_pem


@pytest.fixture(scope="session")
def require_tool():
    return _require_tool


@pytest.fixture(scope="session")
def run_cli():
    return _run_cli


@pytest.fixture(scope="session")
def venv_bin() -> Path:
    return BIN
