"""Certificate authorities: the organization as subjects name it, creating or importing a CA.

Base layer: issuance, revocation and the escrow app's agent certificates build on it.
"""

from __future__ import annotations

import hashlib
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

from ..keystore.ca import key_backend_for, pkcs11_ca_key_adopt, pkcs11_ca_key_create, store_ca_key
from ..models import CertificateAuthority, KeyBackendName
from ..pki import ca as pki_ca
from ..pki.backends import InMemoryKeyBackend, KeyBackend
from ..pki.keys import PublicKey, generate_private_key
from ..pki.lint import new_ca_key_refusal
from ..pki.pkcs11 import new_key_label
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


def _ca_row_check(*, slug: str, is_issuing: bool) -> None:
    # Checked before any key is made: a refused CA must not leave a key behind in a token.
    if CertificateAuthority.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A CA named {slug!r} exists already."})
    if is_issuing and CertificateAuthority.objects.filter(is_issuing=True).exists():
        raise ValidationError("An issuing CA exists already; this portal signs with one issuing CA at a time.")


def _ca_row(
    *, slug, certificate, key_reference, key_backend=KeyBackendName.FILE, parent=None, is_issuing=False, base_url
):
    _ca_row_check(slug=slug, is_issuing=is_issuing)
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
    details = {"slug": slug, "subject": name_text(certificate.subject), "key_backend": str(key_backend)}
    if key_backend == KeyBackendName.PKCS11:
        details["key_reference"] = key_reference  # token and key label, for the key ceremony's record
    audit_record(action=AuditAction.CA_CREATED, obj=ca, details=details)
    return ca


def _new_ca_key_check(key_type: str) -> None:
    """SMC017v2: a CA key created now is RSA >= 4096 or ECDSA (imports of existing CAs are not checked)."""
    refusal = new_ca_key_refusal(key_type)
    if refusal:
        raise ValidationError({"key_type": refusal})


def _ca_key_create(
    *, key_backend: str, key_type: str, slug: str, key_label: str | None
) -> tuple[str, KeyBackend, PublicKey]:
    """A new CA key: (key reference for the CA row, a backend that signs with it, its public key)."""
    if key_backend == KeyBackendName.PKCS11:
        if not key_label:
            raise ValueError("a CA key in a PKCS#11 token needs a label")
        return pkcs11_ca_key_create(key_label=key_label, key_type=key_type)
    if key_backend != KeyBackendName.FILE:
        raise ValidationError({"key_backend": f"A new CA key goes to a file or a PKCS#11 token, not {key_backend!r}."})
    key = generate_private_key(key_type)
    return store_ca_key(slug=slug, key=key), InMemoryKeyBackend(key), key.public_key()


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
    key_backend: str = KeyBackendName.FILE,
    pkcs11_key_label: str | None = None,
) -> CertificateAuthority:
    """A new issuing CA: under a new self-signed root, or self-signed itself (single tier).

    `key_backend` PKCS11 generates the keys inside the PORTAL_PKCS11_TOKEN_LABEL token (the
    root's too: a root key in a file beside an HSM-held issuing key would be the weaker link)
    and signs through it. `pkcs11_key_label` names the issuing CA key (default: from the
    slug, with a random suffix); the root key is labelled "<that label>-root".
    """
    _new_ca_key_check(key_type)
    organization = organization or organization_from_settings()
    base_url = validate_base_url(base_url or settings.PORTAL_BASE_URL)
    subject = pki_ca.ca_subject(common_name=common_name, organization=organization)
    _ca_row_check(slug=slug, is_issuing=True)
    if not single_tier:
        _ca_row_check(slug=root_slug, is_issuing=False)
        if root_slug == slug:
            raise ValidationError({"slug": "The root CA and the issuing CA need different names."})
    if key_backend == KeyBackendName.PKCS11:
        pkcs11_key_label = pkcs11_key_label or new_key_label(slug)
    elif pkcs11_key_label:
        raise ValidationError({"pkcs11_key_label": "A PKCS#11 key label needs the pkcs11 key backend."})
    issuing_reference, issuing_backend, issuing_public_key = _ca_key_create(
        key_backend=key_backend, key_type=key_type, slug=slug, key_label=pkcs11_key_label
    )
    if single_tier:
        certificate = issuing_backend.sign_certificate(
            pki_ca.self_signed_issuing_builder(public_key=issuing_public_key, subject=subject)
        )
        return _ca_row(
            slug=slug,
            certificate=certificate,
            key_reference=issuing_reference,
            key_backend=key_backend,
            is_issuing=True,
            base_url=base_url,
        )
    root_reference, root_backend, root_public_key = _ca_key_create(
        key_backend=key_backend,
        key_type=key_type,
        slug=root_slug,
        key_label=f"{pkcs11_key_label}-root" if pkcs11_key_label else None,
    )
    root_subject = pki_ca.ca_subject(
        common_name=root_common_name or f"{organization.name} Root CA", organization=organization
    )
    root_certificate = root_backend.sign_certificate(
        pki_ca.root_certificate_builder(public_key=root_public_key, subject=root_subject)
    )
    root = _ca_row(
        slug=root_slug,
        certificate=root_certificate,
        key_reference=root_reference,
        key_backend=key_backend,
        base_url=base_url,
    )
    builder = pki_ca.issuing_ca_builder(public_key=issuing_public_key, subject=subject, issuer=issuer_info(root))
    certificate = key_backend_for(root).sign_certificate(builder)
    return _ca_row(
        slug=slug,
        certificate=certificate,
        key_reference=issuing_reference,
        key_backend=key_backend,
        parent=root,
        is_issuing=True,
        base_url=base_url,
    )


@transaction.atomic
def ca_import(
    *,
    certificate: x509.Certificate,
    private_key=None,
    chain: Sequence[x509.Certificate] = (),
    slug: str = "issuing-ca",
    base_url: str | None = None,
    key_backend: str = KeyBackendName.FILE,
    pkcs11_key_label: str | None = None,
) -> CertificateAuthority:
    """Register an existing issuing CA.

    With the file backend its `private_key` is re-encrypted into the key store. With the
    pkcs11 backend the key stays where it is: the token's key labelled `pkcs11_key_label`
    (made by `ca_key_request_create` or the HSM's tools) signs, after it is shown to belong to
    the certificate and to be unexportable. `chain` holds its parents, nearest first; they are
    kept without keys, for the bundles and the served chain.
    """
    base_url = validate_base_url(base_url or settings.PORTAL_BASE_URL)
    if key_backend == KeyBackendName.PKCS11:
        if private_key is not None or not pkcs11_key_label:
            raise ValidationError("A CA key in a PKCS#11 token is named by its label, never imported from a file.")
        key_reference, _, public_key = pkcs11_ca_key_adopt(key_label=pkcs11_key_label)
    elif key_backend == KeyBackendName.FILE and private_key is not None and not pkcs11_key_label:
        key_reference, public_key = "", private_key.public_key()
    else:
        raise ValidationError("Import a CA with its private key (file backend) or a token key's label (pkcs11).")
    if _spki(certificate.public_key()) != _spki(public_key):
        raise ValidationError("The private key does not belong to the CA certificate.")
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    if not constraints.ca:
        raise ValidationError("The certificate is not a CA certificate (basicConstraints cA is false).")
    _ca_row_check(slug=slug, is_issuing=True)
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
        key_reference=key_reference or store_ca_key(slug=slug, key=private_key),
        key_backend=key_backend,
        parent=parent,
        is_issuing=True,
        base_url=base_url,
    )


@transaction.atomic
def ca_key_request_create(
    *,
    common_name: str,
    key_type: str = "rsa-4096",
    organization: Organization | None = None,
    pkcs11_key_label: str | None = None,
    slug: str = "issuing-ca",
) -> tuple[str, x509.CertificateSigningRequest]:
    """Key ceremony, first step of an issuing CA under a parent outside the portal (an offline
    root, the organization's existing PKI): a new CA key inside the PKCS#11 token, never
    exportable, and a certificate request (PKCS#10) signed by it, for the parent to sign.
    Returns (key reference, request). Nothing is registered yet: `ca_import` with the
    pkcs11 backend and this label adopts the key once the certificate comes back.
    """
    _new_ca_key_check(key_type)
    organization = organization or organization_from_settings()
    subject = pki_ca.ca_subject(common_name=common_name, organization=organization)
    _ca_row_check(slug=slug, is_issuing=True)
    key_label = pkcs11_key_label or new_key_label(slug)
    key_reference, backend, _ = pkcs11_ca_key_create(key_label=key_label, key_type=key_type)
    request = backend.sign_csr(x509.CertificateSigningRequestBuilder().subject_name(subject))
    audit_record(
        action=AuditAction.CA_KEY_GENERATED,
        details={
            "key_reference": key_reference,
            "subject": name_text(subject),
            "request_sha256": hashlib.sha256(request.public_bytes(Encoding.DER)).hexdigest(),
        },
    )
    return key_reference, request


def _spki(key) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
