"""What the portal issued, as files for the mail-client engines, and helpers to run them (issue 14).

conftest.py's `portal_output` fills these in through the portal's services; the engines' tests
(test_matrix_*.py) read them.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from portal_testing import PASSWORD, TEST_BASE_URL, require_tool

PASSPHRASE = "Tr0ub4dor & 3 staples"
FORMATS = ("modern", "compatible")
CA_KEY_TYPES = {"rsa": ("rsa-3072", "rsa-3072"), "ec": ("ec-p384", "ec-p384")}  # (root, issuing)
EMPLOYEES = {"alice": ("Alice", "Archer"), "bob": ("Bob", "Baker"), "carol": ("Carol", "Cooper")}


def require(tool: str) -> str:
    """An engine's program; in CI its absence fails the test (portal_testing.require_tool)."""
    return require_tool(tool)


def run(*args, env=None, stdin: str | bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        env=env,
        input=stdin,
    )


@dataclass(frozen=True)
class Identity:
    """One certificate the portal issued, as its owner downloads it."""

    employee: str
    key_type: str
    serial: str
    certificate: x509.Certificate
    bundles: dict[str, bytes]  # format -> PKCS#12 (passphrase PASSPHRASE)

    @property
    def email(self) -> str:
        return f"{self.employee}@example.org"

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(Encoding.PEM)

    def write(self, directory: Path, fmt: str | None = None) -> Path:
        """The certificate (PEM) or, with a format, the PKCS#12 file, in `directory`."""
        if fmt is None:
            path = directory / f"{self.employee}-{self.key_type}.pem"
            path.write_bytes(self.pem)
        else:
            path = directory / f"{self.employee}-{self.key_type}-{fmt}.p12"
            path.write_bytes(self.bundles[fmt])
        return path


@dataclass(frozen=True)
class PortalOutput:
    """Everything one CA hierarchy of the portal handed out, as files for the clients."""

    ca_type: str
    root: x509.Certificate
    issuing: x509.Certificate
    crls: dict[str, bytes]  # slug -> DER CRL as /pki/<slug>.crl served it; carol's certificate is revoked
    identities: dict[tuple[str, str], Identity] = field(default_factory=dict)  # (employee, key type)

    def identity(self, employee: str, key_type: str) -> Identity:
        return self.identities[(employee, key_type)]

    @property
    def revoked(self) -> Identity:
        return self.identities[("carol", "ec-p256")]

    def chain_pem(self) -> bytes:
        return self.issuing.public_bytes(Encoding.PEM) + self.root.public_bytes(Encoding.PEM)

    def write_ca_files(self, directory: Path) -> dict[str, Path]:
        files = {
            "root": directory / "root.pem",
            "issuing": directory / "issuing.pem",
            "chain": directory / "chain.pem",
            "crl": directory / "issuing.crl",
            "root_crl": directory / "root.crl",
        }
        files["root"].write_bytes(self.root.public_bytes(Encoding.PEM))
        files["issuing"].write_bytes(self.issuing.public_bytes(Encoding.PEM))
        files["chain"].write_bytes(self.chain_pem())
        files["crl"].write_bytes(self.crls["issuing-ca"])
        files["root_crl"].write_bytes(self.crls["root-ca"])
        return files


def ca_hierarchy(*, ca_type: str, pki_material, key_dir: Path):
    """(root certificate, root key path, issuing certificate, issuing key path) of one CA key type.

    RSA: the suite's own test CA (tests/conftest.py); ECDSA: made here, the same way."""
    if ca_type == "rsa":
        return pki_material.root, pki_material.root_key_path, pki_material.issuing, pki_material.issuing_key_path
    from django.conf import settings

    from enrollment.pki import ca as pki_ca
    from enrollment.pki.backends import EncryptedFileKeyBackend, InMemoryKeyBackend
    from enrollment.pki.keys import generate_private_key
    from enrollment.pki.profiles import IssuerInfo
    from enrollment.services.authorities import organization_from_settings

    organization = organization_from_settings()
    root_type, issuing_type = CA_KEY_TYPES[ca_type]
    root_key, issuing_key = generate_private_key(root_type), generate_private_key(issuing_type)
    root = pki_ca.create_root_certificate(
        key=root_key, subject=pki_ca.ca_subject(common_name="Test EC Root CA", organization=organization)
    )
    issuing = InMemoryKeyBackend(root_key).sign_certificate(
        pki_ca.issuing_ca_builder(
            public_key=issuing_key.public_key(),
            subject=pki_ca.ca_subject(common_name="Test EC S/MIME CA", organization=organization),
            issuer=IssuerInfo(root, f"{TEST_BASE_URL}/pki/root-ca.crl", f"{TEST_BASE_URL}/pki/root-ca.crt"),
        )
    )
    passphrase = settings.PORTAL_CA_PASSPHRASE.encode()
    paths = key_dir / "ec-root-ca.key.pem", key_dir / "ec-issuing-ca.key.pem"
    EncryptedFileKeyBackend.store(path=paths[0], key=root_key, passphrase=passphrase)
    EncryptedFileKeyBackend.store(path=paths[1], key=issuing_key, passphrase=passphrase)
    return root, str(paths[0]), issuing, str(paths[1])


def _common_name(certificate: x509.Certificate) -> str:
    return certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def ca_rows(root, root_key_path, issuing, issuing_key_path, *, kra, base_url: str = TEST_BASE_URL):
    """The hierarchy as the portal's CA rows (slugs root-ca and issuing-ca), and the suite's key
    recovery agent (escrow needs one)."""
    from enrollment.models import CertificateAuthority
    from escrow.models import KeyRecoveryAgent

    KeyRecoveryAgent.objects.create(
        name="Test Key Recovery Agent",
        certificate_der=kra.public_bytes(Encoding.DER),
        fingerprint_sha256=kra.fingerprint(hashes.SHA256()).hex(),
    )
    root_row = CertificateAuthority.objects.create(
        slug="root-ca",
        common_name=_common_name(root),
        certificate_der=root.public_bytes(Encoding.DER),
        key_reference=root_key_path,
        base_url=base_url,
    )
    return CertificateAuthority.objects.create(
        slug="issuing-ca",
        common_name=_common_name(issuing),
        parent=root_row,
        certificate_der=issuing.public_bytes(Encoding.DER),
        key_reference=issuing_key_path,
        is_issuing=True,
        base_url=base_url,
    )


def portal_user(username: str, *, approver: bool = False):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from enrollment.roles import APPROVERS
    from enrollment.services.employees import employee_upsert

    user = get_user_model().objects.create_user(
        username=username, password=PASSWORD, email=f"{username}@example.org", is_staff=approver
    )
    if approver:
        user.groups.set(Group.objects.filter(name=APPROVERS))
        return user
    given_name, surname = EMPLOYEES[username]
    employee_upsert(user=user, mail=f"{username}@example.org", given_name=given_name, surname=surname)
    return user


def issue(user, approver, key_type: str):
    """A request, its approval (which issues), as the portal's pages and API do."""
    from enrollment.services.requests import certificate_request_approve, certificate_request_create

    request = certificate_request_create(employee=user.employee, submitted_by=user, key_type=key_type)
    request = certificate_request_approve(request_id=request.pk, approver=approver)
    assert request.state == "issued", request.reason
    (certificate,) = request.certificates.all()
    return certificate


def download(user, certificate) -> dict[str, bytes]:
    from enrollment.services.issuance import certificate_pkcs12_export

    return {
        fmt: certificate_pkcs12_export(user=user, serial=certificate.serial, passphrase=PASSPHRASE, fmt=fmt)[1]
        for fmt in FORMATS
    }


def subscriber_key_types() -> list[str]:
    from enrollment.pki.keys import KEY_TYPES

    return list(KEY_TYPES)


NSS_DB_PASSWORD = "nss-db-password"


def nss_db(directory: Path) -> tuple[str, Path]:
    """A new NSS database (as Thunderbird's profile or Evolution's ~/.pki/nssdb holds one)."""
    directory.mkdir(parents=True)
    password_file = directory / "dbpass.txt"
    password_file.write_text(NSS_DB_PASSWORD + "\n")
    result = run(require("certutil"), "-N", "-d", f"sql:{directory}", "-f", password_file)
    assert result.returncode == 0, result.stderr
    return f"sql:{directory}", password_file


def sha1_fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA1()).hex(":").upper()
