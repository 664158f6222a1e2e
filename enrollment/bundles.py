"""What an employee (or a recovery's recipient) downloads: one builder for issued and recovered
keys, as PKCS#12 or as an Apple configuration profile (.mobileconfig) that carries the PKCS#12."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID
from django.core.exceptions import ValidationError

from .models import Certificate
from .pki import mobileconfig
from .pki.pkcs12 import MIN_PASSPHRASE_LENGTH, PKCS12_FORMATS, pkcs12_bundle

MOBILECONFIG = "mobileconfig"
# What the employee's download page offers: the two PKCS#12 formats and the Apple profile.
DOWNLOAD_FORMATS: dict[str, str] = {
    MOBILECONFIG: "Apple configuration profile (.mobileconfig): iPhone, iPad and Mac; "
    "adds the root CA too (holds the compatible PKCS#12)",
    **PKCS12_FORMATS,
}


@dataclass(frozen=True)
class Download:
    filename: str
    content_type: str
    data: bytes


def certificate_chain(certificate: Certificate) -> list[x509.Certificate]:
    """The issuing CA and its parents, up to the root."""
    return [ca.certificate for ca in certificate.issuer.chain()]


def pkcs12_check_passphrase(passphrase: str) -> None:
    if len(passphrase or "") < MIN_PASSPHRASE_LENGTH:
        raise ValidationError({"passphrase": f"Choose a passphrase of at least {MIN_PASSPHRASE_LENGTH} characters."})


def pkcs12_check_format(fmt: str, *, choices=PKCS12_FORMATS) -> None:
    if fmt not in choices:
        raise ValidationError({"format": f"Choose one of {', '.join(choices)}."})


def certificate_pkcs12(*, certificate: Certificate, key, passphrase: str, fmt: str, recovered: bool = False) -> bytes:
    """The key, its certificate and the chain as PKCS#12, named so the mail client's list tells them apart."""
    if recovered:
        friendly_name = f"{certificate.employee.display_name} S/MIME {certificate.serial} (recovered)"
    else:
        # A split pair is told apart in the mail client's certificate list by its usage.
        friendly_name = (
            f"{certificate.employee.display_name} S/MIME"
            + ("" if certificate.usage == Certificate.Usage.DUAL else f" {certificate.usage}")
            + f" ({certificate.issuer.common_name})"
        )
    return pkcs12_bundle(
        key=key,
        certificate=certificate.x509,
        chain=certificate_chain(certificate),
        friendly_name=friendly_name,
        passphrase=passphrase,
        fmt=fmt,
    )


def _profile_identifier(certificate: Certificate) -> str:
    """Reverse DNS of the CA's host, then the certificate: a profile downloaded again replaces the installed one."""
    host = urlsplit(certificate.issuer.base_url or "").hostname or "smime-portal.invalid"
    return ".".join([*reversed(host.split(".")), "smime", certificate.serial.replace(":", "").lower()])


def _organization(certificate: Certificate) -> str:
    names = certificate.issuer.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(names[0].value) if names else certificate.issuer.common_name


def certificate_mobileconfig(*, certificate: Certificate, key, passphrase: str, include_passphrase: bool = False) -> bytes:
    """An unsigned Apple configuration profile: the identity (compatible PKCS#12, the only one every
    Apple importer reads) and the CA chain. Without `include_passphrase` the device asks for it."""
    pkcs12_der = certificate_pkcs12(certificate=certificate, key=key, passphrase=passphrase, fmt="compatible")
    label = "" if certificate.usage == Certificate.Usage.DUAL else f" ({certificate.usage})"
    return mobileconfig.mobileconfig_profile(
        pkcs12_der=pkcs12_der,
        chain=certificate_chain(certificate),
        identifier=_profile_identifier(certificate),
        display_name=f"S/MIME {certificate.mailbox}{label}",
        organization=_organization(certificate),
        description=(
            f"S/MIME key and certificate {certificate.serial} of {certificate.mailbox}, "
            f"valid until {certificate.not_after:%Y-%m-%d}, and the CA certificates of {certificate.issuer.common_name}."
        ),
        pkcs12_filename=f"{certificate.mailbox}.p12",
        password=passphrase if include_passphrase else None,
    )


def certificate_download(
    *, certificate: Certificate, key, passphrase: str, fmt: str, include_passphrase: bool = False
) -> Download:
    """The employee's file in one of DOWNLOAD_FORMATS."""
    pkcs12_check_passphrase(passphrase)
    pkcs12_check_format(fmt, choices=DOWNLOAD_FORMATS)
    if fmt == MOBILECONFIG:
        return Download(
            f"{certificate.mailbox}.mobileconfig",
            mobileconfig.CONTENT_TYPE,
            certificate_mobileconfig(
                certificate=certificate, key=key, passphrase=passphrase, include_passphrase=include_passphrase
            ),
        )
    return Download(
        f"{certificate.mailbox}.p12",
        "application/x-pkcs12",
        certificate_pkcs12(certificate=certificate, key=key, passphrase=passphrase, fmt=fmt),
    )
