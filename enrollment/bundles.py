"""What an employee (or a recovery's recipient) downloads: one PKCS#12 builder for issued and recovered keys."""

from __future__ import annotations

from cryptography import x509
from django.core.exceptions import ValidationError

from .models import Certificate
from .pki.pkcs12 import MIN_PASSPHRASE_LENGTH, PKCS12_FORMATS, pkcs12_bundle


def certificate_chain(certificate: Certificate) -> list[x509.Certificate]:
    """The issuing CA and its parents, up to the root."""
    return [ca.certificate for ca in certificate.issuer.chain()]


def pkcs12_check_passphrase(passphrase: str) -> None:
    if len(passphrase or "") < MIN_PASSPHRASE_LENGTH:
        raise ValidationError({"passphrase": f"Choose a passphrase of at least {MIN_PASSPHRASE_LENGTH} characters."})




def pkcs12_check_format(fmt: str) -> None:
    if fmt not in PKCS12_FORMATS:
        raise ValidationError({"format": f"Choose one of {', '.join(PKCS12_FORMATS)}."})


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
