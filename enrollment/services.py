"""The enrollment workflow: CAs, requests, approval, issuance, delivery.

Every edge (admin action, self-service page, API, management command) calls these.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from datetime import timedelta
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from escrow.audit import audit_record
from escrow.services import escrow_record_create, pickup_copy_create, pickup_copy_open

from . import selectors, signals
from .exceptions import InvalidState, IssuanceError, NotAllowed, NotFound, PortalError, SeparationOfDuties
from .keystore import key_backend_for, store_ca_key
from .models import Certificate, CertificateAuthority, CertificateRequest, Employee
from .pki import ca as pki_ca
from .pki import crl as pki_crl
from .pki.keys import KEY_TYPES, generate_private_key
from .pki.lint import blocking_findings, lint_before_signing
from .pki.pkcs12 import MIN_PASSPHRASE_LENGTH, PKCS12_FORMATS, pkcs12_bundle
from .pki.profiles import CERTIFICATE_TYPES, IssuerInfo, Organization, Subscriber, smime_certificate_builder

logger = logging.getLogger(__name__)


def organization_from_settings() -> Organization:
    return Organization(
        name=settings.PORTAL_ORGANIZATION_NAME,
        organization_identifier=settings.PORTAL_ORGANIZATION_IDENTIFIER,
        country=settings.PORTAL_ORGANIZATION_COUNTRY,
    )


def issuer_info(ca: CertificateAuthority) -> IssuerInfo:
    return IssuerInfo(certificate=ca.certificate, crl_url=ca.crl_url, ca_issuers_url=ca.certificate_url)


def _serial_hex(serial_number: int) -> str:
    return format(serial_number, "x")


# --- Certificate authorities --------------------------------------------------------------


def _ca_row(*, slug, certificate, key_reference, key_backend="file", parent=None, is_issuing=False, base_url):
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
    audit_record(action="ca.created", obj=ca, details={"slug": slug, "subject": certificate.subject.rfc4514_string()})
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
            key_backend="none",
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


@transaction.atomic
def crl_generate(*, ca: CertificateAuthority) -> bytes:
    """Sign a new CRL for `ca` and keep it as the current one."""
    ca = CertificateAuthority.objects.select_for_update().get(pk=ca.pk)
    now = timezone.now().replace(microsecond=0)
    revoked = Certificate.objects.filter(issuer=ca, status=Certificate.Status.REVOKED).values_list(
        "serial", "revoked_at", "revocation_reason"
    )
    entries = (
        pki_crl.RevokedEntry(
            serial_number=int(serial, 16),
            revocation_date=revoked_at,
            reason=x509.ReasonFlags(reason) if reason else None,
        )
        for serial, revoked_at, reason in revoked.iterator(chunk_size=5000)
    )
    next_update = now + timedelta(days=settings.PORTAL_CRL_VALIDITY_DAYS)
    builder = pki_crl.crl_builder(
        issuer_certificate=ca.certificate,
        entries=entries,
        crl_number=ca.crl_number + 1,
        this_update=now,
        next_update=next_update,
    )
    crl = key_backend_for(ca).sign_crl(builder)
    ca.crl_number += 1
    ca.crl_der = crl.public_bytes(Encoding.DER)
    ca.crl_next_update = next_update
    ca.save(update_fields=["crl_number", "crl_der", "crl_next_update"])
    audit_record(action="crl.generated", obj=ca, details={"crl_number": ca.crl_number})
    return bytes(ca.crl_der)


def crl_current(*, ca: CertificateAuthority) -> bytes:
    """The CRL to serve; reissued once a day so that it never comes near its nextUpdate."""
    refresh_after = timedelta(days=settings.PORTAL_CRL_VALIDITY_DAYS - 1)
    if ca.crl_der and ca.crl_next_update and timezone.now() < ca.crl_next_update - refresh_after:
        return bytes(ca.crl_der)
    return crl_generate(ca=ca)


# --- Employees ----------------------------------------------------------------------------


@transaction.atomic
def employee_upsert(
    *, user, mail: str, given_name: str = "", surname: str = "", department: str = "", directory_dn: str = ""
) -> Employee:
    employee = Employee.objects.filter(user=user).first() or Employee(user=user)
    employee.mail = mail.strip().lower()
    employee.given_name = given_name.strip()
    employee.surname = surname.strip()
    employee.department = department.strip()
    employee.directory_dn = directory_dn.strip()
    employee.full_clean()
    employee.save()
    return employee


# --- Requests -----------------------------------------------------------------------------


def _can_approve(user) -> bool:
    return user.is_active and user.has_perm("enrollment.approve_certificaterequest")


@transaction.atomic
def certificate_request_create(
    *,
    employee: Employee,
    submitted_by,
    key_type: str = "rsa-3072",
    certificate_type: str = "sponsor-strict",
) -> CertificateRequest:
    if submitted_by.pk != employee.user_id and not _can_approve(submitted_by):
        raise NotAllowed("You can only request certificates for yourself.")
    errors = {}
    if key_type not in KEY_TYPES:
        errors["key_type"] = f"Unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}."
    if certificate_type not in CERTIFICATE_TYPES:
        errors["certificate_type"] = (
            f"Unknown certificate type {certificate_type!r}; choose one of {', '.join(CERTIFICATE_TYPES)}."
        )
    if certificate_type == "sponsor-strict" and not (employee.given_name and employee.surname):
        errors["certificate_type"] = (
            "A sponsor-validated certificate names the person: the employee record needs a given name and surname."
        )
    domain = employee.mail.rsplit("@", 1)[-1].lower()
    if settings.PORTAL_MAIL_DOMAINS and domain not in settings.PORTAL_MAIL_DOMAINS:
        errors["mail"] = f"This CA does not certify addresses at {domain}."
    if errors:
        raise ValidationError(errors)
    pending = CertificateRequest.objects.select_for_update().filter(
        employee=employee, state=CertificateRequest.State.PENDING
    )
    if pending.exists():
        raise ValidationError(f"There is a pending request for {employee.mail} already (#{pending.first().pk}).")
    request = CertificateRequest(
        employee=employee, submitted_by=submitted_by, key_type=key_type, certificate_type=certificate_type
    )
    request.full_clean()
    request.save()
    audit_record(
        action="request.created",
        actor=submitted_by,
        obj=request,
        details={"mailbox": employee.mail, "key_type": key_type, "certificate_type": certificate_type},
    )
    return request


def _pending_request_for_decision(*, request_id: int, user) -> CertificateRequest:
    if not _can_approve(user):
        raise NotAllowed("You are not allowed to approve or reject certificate requests.")
    request = (
        CertificateRequest.objects.select_for_update(of=("self",))
        .select_related("employee__user")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        raise NotFound(f"There is no request #{request_id}.")
    if user.pk in (request.employee.user_id, request.submitted_by_id):
        raise SeparationOfDuties(
            f"You cannot decide request #{request.pk}: it is your own (separation of duties)."
        )
    if request.state != CertificateRequest.State.PENDING:
        raise InvalidState(f"Request #{request.pk} is {request.state}, not pending.")
    return request


@transaction.atomic
def certificate_request_approve(*, request_id: int, approver) -> CertificateRequest:
    """Approve; the post_approve_request receiver issues the certificate in this transaction."""
    request = _pending_request_for_decision(request_id=request_id, user=approver)
    request.state = CertificateRequest.State.APPROVED
    request.decided_by = approver
    request.decided_at = timezone.now()
    request.save(update_fields=["state", "decided_by", "decided_at"])
    audit_record(action="request.approved", actor=approver, obj=request)
    signals.post_approve_request.send(sender=CertificateRequest, request=request, approver=approver)
    request.refresh_from_db()
    return request


@transaction.atomic
def certificate_request_reject(*, request_id: int, approver, reason: str) -> CertificateRequest:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the request is rejected."})
    request = _pending_request_for_decision(request_id=request_id, user=approver)
    request.state = CertificateRequest.State.REJECTED
    request.decided_by = approver
    request.decided_at = timezone.now()
    request.reason = reason
    request.save(update_fields=["state", "decided_by", "decided_at", "reason"])
    audit_record(action="request.rejected", actor=approver, obj=request, details={"reason": reason})
    signals.post_reject_request.send(sender=CertificateRequest, request=request, approver=approver)
    return request


# --- Issuance -----------------------------------------------------------------------------


@transaction.atomic
def certificate_issue(*, request: CertificateRequest) -> Certificate:
    """Generate the key, lint and sign the certificate, escrow the key, keep the pickup copy."""
    if request.state != CertificateRequest.State.APPROVED:
        raise InvalidState(f"Request #{request.pk} is {request.state}, not approved.")
    ca = selectors.issuing_ca()
    employee = request.employee
    key = generate_private_key(request.key_type)
    try:
        builder = smime_certificate_builder(
            certificate_type=request.certificate_type,
            subscriber=Subscriber(mailbox=employee.mail, given_name=employee.given_name, surname=employee.surname),
            organization=organization_from_settings(),
            issuer=issuer_info(ca),
            public_key=key.public_key(),
            not_before=timezone.now(),
            validity_days=settings.PORTAL_CERTIFICATE_VALIDITY_DAYS,
        )
    except ValueError as exc:
        raise IssuanceError(f"The certificate cannot be built: {exc}") from None
    # Pre-issuance linting (SBR 4.3.1.2): the CA key signs nothing pkilint would refuse.
    findings = blocking_findings(lint_before_signing(builder, ca_public_key=ca.certificate.public_key()))
    if findings:
        raise IssuanceError(
            "Pre-issuance lint refused the certificate: "
            + "; ".join(f"{f.severity} {f.code}: {f.message}".strip() for f in findings)
        )
    signed = key_backend_for(ca).sign_certificate(builder)
    certificate = Certificate(
        request=request,
        employee=employee,
        issuer=ca,
        serial=_serial_hex(signed.serial_number),
        subject=signed.subject.rfc4514_string(),
        mailbox=employee.mail,
        key_type=request.key_type,
        certificate_type=request.certificate_type,
        not_before=signed.not_valid_before_utc,
        not_after=signed.not_valid_after_utc,
        fingerprint_sha256=signed.fingerprint(hashes.SHA256()).hex(),
        der=signed.public_bytes(Encoding.DER),
    )
    certificate.full_clean()
    certificate.save()
    escrow_record_create(certificate=certificate, private_key=key)
    pickup_copy_create(certificate=certificate, private_key=key)
    request.state = CertificateRequest.State.ISSUED
    request.save(update_fields=["state"])
    audit_record(
        action="certificate.issued",
        obj=certificate,
        details={"serial": certificate.serial, "request": request.pk, "fingerprint": certificate.fingerprint_sha256},
    )
    signals.post_issue_certificate.send(sender=Certificate, certificate=certificate)
    return certificate


def certificate_request_fulfil(*, request: CertificateRequest) -> Certificate | None:
    """Issue for an approved request, or mark it failed with the reason; never half-issued."""
    try:
        with transaction.atomic():
            return certificate_issue(request=request)
    except Exception as exc:  # noqa: BLE001 - any failure must end in `failed`, not a half-issued request
        if isinstance(exc, PortalError):
            reason = exc.message
        else:
            logger.exception("Issuance for request %s failed", request.pk)
            reason = f"Issuance failed unexpectedly ({type(exc).__name__}); see the server log."
        CertificateRequest.objects.filter(pk=request.pk).update(state=CertificateRequest.State.FAILED, reason=reason)
        audit_record(action="request.failed", obj=request, details={"reason": reason})
        return None


# --- Delivery -----------------------------------------------------------------------------


def certificate_chain(certificate: Certificate) -> list[x509.Certificate]:
    """The issuing CA and its parents, up to the root."""
    return [ca.certificate for ca in certificate.issuer.chain()]


def pkcs12_check_passphrase(passphrase: str) -> None:
    if len(passphrase or "") < MIN_PASSPHRASE_LENGTH:
        raise ValidationError({"passphrase": f"Choose a passphrase of at least {MIN_PASSPHRASE_LENGTH} characters."})


@transaction.atomic
def certificate_pkcs12_export(*, user, serial: str, passphrase: str, fmt: str = "modern") -> tuple[Certificate, bytes]:
    """The owner's key, certificate and chain as PKCS#12, while the pickup window is open."""
    certificate = selectors.certificate_of_owner(user=user, serial=serial)
    pkcs12_check_passphrase(passphrase)
    if fmt not in PKCS12_FORMATS:
        raise ValidationError({"format": f"Choose one of {', '.join(PKCS12_FORMATS)}."})
    if certificate.status != Certificate.Status.VALID:
        raise InvalidState(f"The certificate {certificate.serial} is {certificate.status}.")
    key = pickup_copy_open(certificate=certificate)
    bundle = pkcs12_bundle(
        key=key,
        certificate=certificate.x509,
        chain=certificate_chain(certificate),
        friendly_name=f"{certificate.employee.display_name} S/MIME ({certificate.issuer.common_name})",
        passphrase=passphrase,
        fmt=fmt,
    )
    audit_record(
        action="certificate.pkcs12_downloaded", actor=user, obj=certificate, details={"format": fmt}
    )
    return certificate, bundle
