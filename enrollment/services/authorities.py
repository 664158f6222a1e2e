"""Certificate authorities: the organization as subjects name it, creating or importing a CA.

Base layer: issuance, revocation and the escrow app's agent certificates build on it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.events import AuditAction
from audit.services import audit_record

from ..keystore.ca import key_backend_for, store_ca_key
from ..models import CertificateAuthority, KeyBackendName
from ..pki import ca as pki_ca
from ..pki.keys import generate_private_key
from ..pki.profiles import IssuerInfo, Organization, name_text


def organization_from_settings() -> Organization:
    return Organization(
        name=settings.PORTAL_ORGANIZATION_NAME,
        organization_identifier=settings.PORTAL_ORGANIZATION_IDENTIFIER,
        country=settings.PORTAL_ORGANIZATION_COUNTRY,
    )


def issuer_info(ca: CertificateAuthority) -> IssuerInfo:
    # OCSP only for what the issuing CA signs: a root's key may be offline (or absent when imported).
    ocsp_url = f"{ca.base_url}/ocsp/{ca.slug}" if settings.PORTAL_OCSP_ENABLED and ca.is_issuing else None
    return IssuerInfo(
        certificate=ca.certificate, crl_url=ca.crl_url, ca_issuers_url=ca.certificate_url, ocsp_url=ocsp_url
    )


def _ca_row(
    *, slug, certificate, key_reference, key_backend=KeyBackendName.FILE, parent=None, is_issuing=False, base_url
):
    if CertificateAuthority.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A CA named {slug!r} exists already."})
    if is_issuing and CertificateAuthority.objects.filter(is_issuing=True).exists():
        raise ValidationError("An issuing CA exists already; this portal signs with one issuing CA at a time.")
    ca = CertificateAuthority(
        slug=slug,
        common_name=certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value,
        parent=parent,
        certificate_der=certificate.public_bytes(Encoding.DER),
        key_backend=key_backend,
        key_reference=key_reference,
        is_issuing=is_issuing,
        base_url=base_url,
    )
    ca.full_clean()
    ca.save()
    audit_record(action=AuditAction.CA_CREATED, obj=ca, details={"slug": slug, "subject": name_text(certificate.subject)})
    return ca


_INTERNAL_SUFFIXES = (".local", ".localhost", ".localdomain", ".internal", ".lan", ".home", ".corp", ".intranet")


def validate_base_url(base_url: str) -> str:
    """The CA's public base URL, or ValidationError: certificates that name it must pass the lint."""
    parsed = urlsplit(base_url)
    host = (parsed.hostname or "").lower()
    if parsed.scheme != "http" or not host or parsed.path.strip("/") or parsed.query:
        raise ValidationError({"base_url": f"{base_url!r}: use a plain http:// URL with a host name and no path."})
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise ValidationError({"base_url": f"{base_url!r}: certificates may not name an IP address; use a DNS name."})
    if "." not in host or f".{host}".endswith(_INTERNAL_SUFFIXES):
        raise ValidationError({"base_url": f"{base_url!r}: {host} is an internal name; use a public DNS name."})
    return base_url.rstrip("/")


@transaction.atomic
def ca_create(
    *,
    common_name: str,
    key_type: str = "rsa-4096",
    organization: Organization | None = None,
    root_common_name: str | None = None,
    single_tier: bool = False,
    slug: str = "issuing-ca",
    root_slug: str = "root-ca",
    base_url: str | None = None,
) -> CertificateAuthority:
    """A new issuing CA: under a new self-signed root, or self-signed itself (single tier)."""
    organization = organization or organization_from_settings()
    base_url = validate_base_url(base_url or settings.PORTAL_BASE_URL)
    subject = pki_ca.ca_subject(common_name=common_name, organization=organization)
    issuing_key = generate_private_key(key_type)
    if single_tier:
        certificate = pki_ca.self_signed_issuing_certificate(key=issuing_key, subject=subject)
        return _ca_row(
            slug=slug,
            certificate=certificate,
            key_reference=store_ca_key(slug=slug, key=issuing_key),
            is_issuing=True,
            base_url=base_url,
        )
    root_key = generate_private_key(key_type)
    root_subject = pki_ca.ca_subject(
        common_name=root_common_name or f"{organization.name} Root CA", organization=organization
    )
    root_certificate = pki_ca.create_root_certificate(key=root_key, subject=root_subject)
    root = _ca_row(
        slug=root_slug,
        certificate=root_certificate,
        key_reference=store_ca_key(slug=root_slug, key=root_key),
        base_url=base_url,
    )
    builder = pki_ca.issuing_ca_builder(
        public_key=issuing_key.public_key(), subject=subject, issuer=issuer_info(root)
    )
    certificate = key_backend_for(root).sign_certificate(builder)
    return _ca_row(
        slug=slug,
        certificate=certificate,
        key_reference=store_ca_key(slug=slug, key=issuing_key),
        parent=root,
        is_issuing=True,
        base_url=base_url,
    )


@transaction.atomic
def ca_import(
    *,
    certificate: x509.Certificate,
    private_key,
    chain: Sequence[x509.Certificate] = (),
    slug: str = "issuing-ca",
    base_url: str | None = None,
) -> CertificateAuthority:
    """Register an existing issuing CA (its key is re-encrypted into the key store).

    `chain` holds its parents, nearest first; they are kept without keys, for the
    bundles and the served chain.
    """
    base_url = validate_base_url(base_url or settings.PORTAL_BASE_URL)
    if _spki(certificate.public_key()) != _spki(private_key.public_key()):
        raise ValidationError("The private key does not belong to the CA certificate.")
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    if not constraints.ca:
        raise ValidationError("The certificate is not a CA certificate (basicConstraints cA is false).")
    parent = None
    for index, parent_certificate in enumerate(reversed(list(chain))):
        parent = _ca_row(
            slug=f"{slug}-parent-{len(chain) - index}",
            certificate=parent_certificate,
            key_reference="",
            key_backend=KeyBackendName.NONE,
            parent=parent,
            base_url=base_url,
        )
    return _ca_row(
        slug=slug,
        certificate=certificate,
        key_reference=store_ca_key(slug=slug, key=private_key),
        parent=parent,
        is_issuing=True,
        base_url=base_url,
    )


def _spki(key) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
