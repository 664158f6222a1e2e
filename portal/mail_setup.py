"""What an organization's administrator does before employees can use S/MIME (issue 14, finding 6).

A page for PKI administrators: Exchange Online (the CA certificates in the tenant's certificate
collection, a CRL reachable from the internet) and Google Workspace (S/MIME turned on, the root
CA uploaded; a chain with at least one intermediate CA), with the CA certificates served in the
formats those consoles take: DER .cer, PEM, a PKCS#7 .p7b bundle. Exchange wants an SST
(a Windows serialized certificate store): the page explains how to make one from the .cer files
on Windows rather than building a Windows-private format here that nothing on this side could check.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from django.conf import settings
from django.contrib.auth.decorators import login_required, user_passes_test
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.downloads import attachment
from core.exceptions import PortalError
from enrollment import selectors
from enrollment.models import CertificateAuthority
from enrollment.roles import is_pki_administrator

BUNDLE_P7B = "ca-certificates.p7b"
BUNDLE_PEM = "ca-certificates.pem"
# Hosts no client on the internet reaches: Exchange Online and Gmail fetch the CRL from there.
_UNREACHABLE_SUFFIXES = (".example.org", ".example.com", ".example.net", ".example", ".localhost", ".local", ".internal", ".lan")


def _pki_administrator(user) -> bool:
    if not is_pki_administrator(user):
        raise PermissionDenied("PKI administrators only.")
    return True


pki_administrators_only = user_passes_test(_pki_administrator)


@dataclass(frozen=True)
class CaFiles:
    ca: CertificateAuthority
    role: str  # "root", "intermediate" or "issuing"
    fingerprint_sha256: str
    fingerprint_sha1: str  # what Windows calls the thumbprint

    @property
    def der_name(self) -> str:
        return f"{self.ca.slug}.cer"

    @property
    def pem_name(self) -> str:
        return f"{self.ca.slug}.pem"


def _colon_hex(data: bytes) -> str:
    return ":".join(f"{byte:02X}" for byte in data)


def _chain() -> list[CertificateAuthority]:
    """The issuing CA and its parents, root last; empty before `init_ca`."""
    try:
        return selectors.issuing_ca().chain()
    except PortalError:
        return []


def _ca_files(chain: list[CertificateAuthority]) -> list[CaFiles]:
    files = []
    for index, ca in enumerate(chain):
        role = "root" if index == len(chain) - 1 else ("issuing" if index == 0 else "intermediate")
        files.append(
            CaFiles(
                ca,
                role,
                _colon_hex(ca.certificate.fingerprint(hashes.SHA256())),
                _colon_hex(ca.certificate.fingerprint(hashes.SHA1())),  # noqa: S303 - Windows' thumbprint, not a signature
            )
        )
    return list(reversed(files))  # root first, as the consoles are filled


def crl_reachability_problem(url: str) -> str | None:
    """Why Exchange Online or Gmail could not fetch a CRL at `url`, when it is evident from the name."""
    host = (urlsplit(url).hostname or "").lower()
    if not host:
        return "it names no host"
    if host in ("localhost", "example.org", "example.com", "example.net") or host.endswith(_UNREACHABLE_SUFFIXES):
        return f"{host} is a reserved or local name, not one the internet can resolve"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address.is_global:
        return f"{host} is a private or loopback address"
    return None


@login_required
@pki_administrators_only
@require_GET
def mail_setup(request):
    chain = _chain()
    files = _ca_files(chain)
    crls = [(ca, ca.crl_url, crl_reachability_problem(ca.crl_url)) for ca in chain]
    return render(
        request,
        "portal/mail_setup.html",
        {
            "files": files,
            "root": files[0] if files else None,
            "single_tier": len(chain) == 1,
            "crls": crls,
            "base_url": settings.PORTAL_BASE_URL,
            "base_url_problem": crl_reachability_problem(settings.PORTAL_BASE_URL),
            "key_separation": settings.PORTAL_KEY_SEPARATION,
            "bundle_p7b": BUNDLE_P7B,
            "bundle_pem": BUNDLE_PEM,
        },
    )


@login_required
@pki_administrators_only
@require_GET
def mail_setup_file(request, filename: str):
    chain = _chain()
    certificates: list[x509.Certificate] = [ca.certificate for ca in reversed(chain)]  # root first
    if certificates and filename == BUNDLE_P7B:
        return attachment(
            pkcs7.serialize_certificates(certificates, Encoding.DER), "application/x-pkcs7-certificates", filename
        )
    if certificates and filename == BUNDLE_PEM:
        return attachment(
            b"".join(c.public_bytes(Encoding.PEM) for c in certificates), "application/x-pem-file", filename
        )
    for ca in chain:
        if filename == f"{ca.slug}.cer":
            return attachment(ca.certificate.public_bytes(Encoding.DER), "application/pkix-cert", filename)
        if filename == f"{ca.slug}.pem":
            return attachment(ca.certificate.public_bytes(Encoding.PEM), "application/x-pem-file", filename)
    raise Http404("No such file")
