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

from audit.events import AuditAction

from audit.services import audit_record
from escrow.services import escrow_record_create, pickup_copy_create, pickup_copy_open

from . import selectors, signals
from core.exceptions import InvalidState, IssuanceError, NotAllowed, NotFound, PortalError, SeparationOfDuties
from .keystore import key_backend_for, store_ca_key
from .models import Certificate, CertificateAuthority, CertificateRequest, Employee
from .pki import ca as pki_ca
from .pki import crl as pki_crl
from .pki.keys import KEY_TYPES, generate_private_key
from .pki.lint import blocking_findings, lint_before_signing
from .pki.pkcs12 import MIN_PASSPHRASE_LENGTH, PKCS12_FORMATS, pkcs12_bundle
from .pki.profiles import (
    CERTIFICATE_TYPES,
    IssuerInfo,
    Organization,
    Subscriber,
    name_text,
    smime_certificate_builder,
)
from .pki.serials import serial_text

logger = logging.getLogger(__name__)


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
            reason=pki_crl.reason_from_name(reason),
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
    audit_record(action=AuditAction.CRL_GENERATED, obj=ca, details={"crl_number": ca.crl_number})
    return bytes(ca.crl_der)


def _crl_due(ca: CertificateAuthority) -> bool:
    # Reissued once a day, so the CRL served never comes near its nextUpdate.
    refresh_after = timedelta(days=settings.PORTAL_CRL_VALIDITY_DAYS - 1)
    return not (ca.crl_der and ca.crl_next_update and timezone.now() < ca.crl_next_update - refresh_after)


def crl_current(*, ca: CertificateAuthority) -> bytes:
    """The CRL to serve, reissued first when it is due."""
    if not _crl_due(ca):
        return bytes(ca.crl_der)
    return crl_generate(ca=ca)


def crls_refresh() -> list[CertificateAuthority]:
    """The periodic CRL job: reissue each CA's CRL that is due. Returns the CAs reissued."""
    reissued = []
    for ca in CertificateAuthority.objects.exclude(key_backend="none").order_by("pk"):
        if _crl_due(ca):
            crl_generate(ca=ca)
            reissued.append(ca)
    return reissued


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


@transaction.atomic
def employee_create(*, actor, username: str, mail: str, **fields) -> Employee:
    """A new employee record, with a password-less account when the username has none
    (a directory log-in or a PKI administrator gives it a way in later)."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is not None and Employee.objects.filter(user=user).exists():
        raise ValidationError({"username": f"{username} has an employee record already; change that one instead."})
    if user is None:
        user = user_model(username=username, email=mail)
        user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
    employee = employee_upsert(user=user, mail=mail, **fields)
    audit_record(action=AuditAction.EMPLOYEE_CREATED, actor=actor, obj=employee, details={"username": username, "mail": employee.mail})
    return employee


@transaction.atomic
def employee_update(*, employee: Employee, actor, **changes) -> Employee:
    """Replace the given fields of an employee record; the audit log names the fields that changed."""
    current = {
        "mail": employee.mail,
        "given_name": employee.given_name,
        "surname": employee.surname,
        "department": employee.department,
        "directory_dn": employee.directory_dn,
    }
    unknown = set(changes) - set(current)
    if unknown:
        raise ValidationError({name: "This field cannot be changed here." for name in sorted(unknown)})
    employee = employee_upsert(user=employee.user, **{**current, **changes})
    changed = sorted(key for key in changes if changes[key] != current[key])
    if changed:
        audit_record(action=AuditAction.EMPLOYEE_CHANGED, actor=actor, obj=employee, details={"fields": changed})
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
    renewal_of: Certificate | None = None,
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
        employee=employee,
        submitted_by=submitted_by,
        key_type=key_type,
        certificate_type=certificate_type,
        key_separation=settings.PORTAL_KEY_SEPARATION,
        renewal_of=renewal_of,
    )
    request.full_clean()
    request.save()
    audit_record(
        action=AuditAction.REQUEST_CREATED,
        actor=submitted_by,
        obj=request,
        details={
            "mailbox": employee.mail,
            "key_type": key_type,
            "certificate_type": certificate_type,
            "key_separation": request.key_separation,
            **({"renewal_of": renewal_of.serial} if renewal_of else {}),
        },
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
    audit_record(action=AuditAction.REQUEST_APPROVED, actor=approver, obj=request)
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
    audit_record(action=AuditAction.REQUEST_REJECTED, actor=approver, obj=request, details={"reason": reason})
    signals.post_reject_request.send(sender=CertificateRequest, request=request, approver=approver)
    return request


# --- Issuance -----------------------------------------------------------------------------


def _certificate_sign(*, request: CertificateRequest, ca: CertificateAuthority, usage: str):
    """Generate a key and sign a certificate for it after the pre-issuance lint. Returns (key, certificate)."""
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
            usage=usage,
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
    return key, key_backend_for(ca).sign_certificate(builder)


@transaction.atomic
def certificate_issue(*, request: CertificateRequest) -> Certificate:
    """Generate the key(s), lint and sign, escrow what may be escrowed, keep the pickup copies.

    One dual-use certificate, or with key separation a signing certificate whose key is
    never escrowed (the pickup copy is its only copy) and an encryption certificate whose
    key is. Returns the dual-use or the encryption certificate.
    """
    if request.state != CertificateRequest.State.APPROVED:
        raise InvalidState(f"Request #{request.pk} is {request.state}, not approved.")
    ca = selectors.issuing_ca()
    employee = request.employee
    usages = (
        [Certificate.Usage.SIGNING, Certificate.Usage.ENCRYPTION] if request.key_separation else [Certificate.Usage.DUAL]
    )
    issued = []
    for usage in usages:
        key, signed = _certificate_sign(request=request, ca=ca, usage=usage)
        certificate = Certificate(
            request=request,
            employee=employee,
            issuer=ca,
            usage=usage,
            serial=serial_text(signed.serial_number),
            subject=name_text(signed.subject),
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
        if usage != Certificate.Usage.SIGNING:
            escrow_record_create(certificate=certificate, private_key=key)
        pickup_copy_create(certificate=certificate, private_key=key)
        audit_record(
            action=AuditAction.CERTIFICATE_ISSUED,
            obj=certificate,
            details={
                "serial": certificate.serial,
                "request": request.pk,
                "usage": usage,
                "fingerprint": certificate.fingerprint_sha256,
                "key_escrowed": usage != Certificate.Usage.SIGNING,
            },
        )
        issued.append(certificate)
    request.state = CertificateRequest.State.ISSUED
    request.save(update_fields=["state"])
    for certificate in issued:
        signals.post_issue_certificate.send(sender=Certificate, certificate=certificate)
    return issued[-1]


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
        audit_record(action=AuditAction.REQUEST_FAILED, obj=request, details={"reason": reason})
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
        # A split pair is told apart in the mail client's certificate list by its usage.
        friendly_name=f"{certificate.employee.display_name} S/MIME"
        + ("" if certificate.usage == Certificate.Usage.DUAL else f" {certificate.usage}")
        + f" ({certificate.issuer.common_name})",
        passphrase=passphrase,
        fmt=fmt,
    )
    if certificate.usage == Certificate.Usage.SIGNING:
        # A signing key is never escrowed: the one download is its only copy outside the
        # employee's hands, so it does not outlive it.
        from escrow.models import PickupCopy

        PickupCopy.objects.filter(certificate=certificate).delete()
    audit_record(
        action=AuditAction.CERTIFICATE_PKCS12_DOWNLOADED,
        actor=user,
        obj=certificate,
        details={"format": fmt, "pickup_destroyed": certificate.usage == Certificate.Usage.SIGNING},
    )
    return certificate, bundle


# --- Revocation ---------------------------------------------------------------------------

# What an employee may say about their own certificate without an administrator.
OWNER_REVOCATION_REASONS = ("key_compromise", "superseded")


def _check_revocation_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if reason not in pki_crl.REVOCATION_REASON_NAMES:
        raise ValidationError(
            {"reason": f"Unknown revocation reason {reason!r}; choose one of {', '.join(pki_crl.REVOCATION_REASON_NAMES)}."}
        )
    return reason


def _can_revoke_any(user) -> bool:
    return user.is_active and user.has_perm("enrollment.revoke_certificate")


@transaction.atomic
def certificate_revoke(*, serial: str, actor, reason: str, comment: str = "") -> Certificate:
    """Revoke for good. `actor` None is the system (command line, offboarding, expiry of a pair).

    Revokers (perm enrollment.revoke_certificate) may give any reason; an owner may revoke
    their own certificate as key_compromise or superseded; anyone else learns nothing.
    """
    reason = _check_revocation_reason(reason)
    certificate = selectors.certificate_by_serial(serial=serial)
    if actor is not None and not _can_revoke_any(actor):
        if certificate.employee.user_id != actor.pk:
            raise NotFound(f"No certificate with serial {serial}.")
        if reason not in OWNER_REVOCATION_REASONS:
            raise NotAllowed(
                "You can revoke your own certificate for key_compromise or superseded only; "
                "ask a PKI administrator for anything else."
            )
    certificate = (
        Certificate.objects.select_for_update(of=("self",))
        .select_related("employee__user", "issuer")
        .get(pk=certificate.pk)
    )
    if certificate.status != Certificate.Status.VALID:
        raise InvalidState(f"The certificate {certificate.serial} is {certificate.status} already; revocation is final.")
    certificate.status = Certificate.Status.REVOKED
    certificate.revoked_at = timezone.now().replace(microsecond=0)
    certificate.revocation_reason = reason
    certificate.revoked_by = actor if actor is not None and actor.is_authenticated else None
    certificate.revocation_comment = (comment or "").strip()[:2000]
    certificate.save(
        update_fields=["status", "revoked_at", "revocation_reason", "revoked_by", "revocation_comment"]
    )
    # Nobody downloads the key of a revoked certificate; the escrowed copy stays for old mail.
    from escrow.models import PickupCopy

    PickupCopy.objects.filter(certificate=certificate).delete()
    audit_record(
        action=AuditAction.CERTIFICATE_REVOKED,
        actor=actor,
        obj=certificate,
        details={"serial": certificate.serial, "reason": reason, "comment": certificate.revocation_comment},
    )
    signals.post_revoke_certificate.send(sender=Certificate, certificate=certificate, actor=actor)
    return certificate


# --- Expiry -------------------------------------------------------------------------------


def certificates_expire(*, now=None) -> int:
    """Mark certificates past notAfter expired (each in its own transaction). Returns how many."""
    now = now or timezone.now()
    count = 0
    due = Certificate.objects.filter(status=Certificate.Status.VALID, not_after__lte=now).values_list("pk", flat=True)
    for pk in list(due):
        with transaction.atomic():
            certificate = Certificate.objects.select_for_update().filter(pk=pk, status=Certificate.Status.VALID).first()
            if certificate is None:
                continue
            certificate.status = Certificate.Status.EXPIRED
            certificate.save(update_fields=["status"])
            audit_record(action=AuditAction.CERTIFICATE_EXPIRED, obj=certificate, details={"serial": certificate.serial})
            signals.post_expire_certificate.send(sender=Certificate, certificate=certificate)
        count += 1
    return count


def expiry_notices_send(*, thresholds: Sequence[int] | None = None, now=None) -> int:
    """E-mail owners whose certificate expires within a threshold, once per threshold.

    A certificate first seen inside several thresholds gets one mail, for the nearest, and
    the wider thresholds count as sent: nobody gets a "30 days left" after "7 days left".
    """
    thresholds = sorted({int(t) for t in (thresholds or settings.PORTAL_EXPIRY_NOTICE_DAYS)})
    if not thresholds or thresholds[0] < 0:
        raise ValidationError("Expiry thresholds are whole numbers of days, at least 0.")
    now = now or timezone.now()
    sent = 0
    candidates = (
        Certificate.objects.filter(status=Certificate.Status.VALID, not_after__gt=now)
        .filter(not_after__lte=now + timedelta(days=thresholds[-1]))
        .select_related("employee__user")
        .order_by("not_after", "pk")
    )
    for certificate in candidates:
        days_left = (certificate.not_after - now).total_seconds() / 86400
        due = [t for t in thresholds if days_left <= t]
        try:
            sent += _expiry_notice_send(certificate=certificate, due=due)
        except Exception:  # noqa: BLE001 - one mail server hiccup must not stop the others; retried next run
            logger.warning("Expiry notice for %s not sent; retried next run", certificate.serial, exc_info=True)
    return sent


def _expiry_notice_send(*, certificate: Certificate, due: list[int]) -> int:
    """Mail one reminder for the nearest due threshold and record all due ones; 0 if sent before."""
    from django.core.mail import send_mail

    from .models import ExpiryNotice

    with transaction.atomic():
        already = set(
            ExpiryNotice.objects.select_for_update()
            .filter(certificate=certificate)
            .values_list("threshold_days", flat=True)
        )
        if min(due) in already:
            return 0
        ExpiryNotice.objects.bulk_create(
            [ExpiryNotice(certificate=certificate, threshold_days=t) for t in due if t not in already]
        )
        renew_url = f"{settings.PORTAL_SITE_URL}/"
        send_mail(
            subject=f"Your S/MIME certificate expires on {certificate.not_after:%Y-%m-%d}",
            message=(
                f"Hello {certificate.employee.display_name},\n\n"
                f"your S/MIME certificate for {certificate.mailbox} (serial {certificate.serial}) "
                f"expires on {certificate.not_after:%Y-%m-%d %H:%M} UTC.\n"
                f"Request a renewal on the portal: {renew_url}\n\n"
                "Your old key stays escrowed, so mail encrypted to it stays readable.\n"
            ),
            from_email=None,
            recipient_list=[certificate.mailbox],
        )
        audit_record(
            action=AuditAction.CERTIFICATE_EXPIRY_NOTICE_SENT,
            obj=certificate,
            details={"serial": certificate.serial, "threshold_days": min(due)},
        )
    return 1


# --- Renewal ------------------------------------------------------------------------------


def _identity_unchanged(certificate: Certificate) -> bool:
    """Whether a new certificate would name the same person and mailbox as `certificate`."""
    employee = certificate.employee
    if certificate.mailbox != employee.mail:
        return False
    if certificate.certificate_type != "sponsor-strict":
        return True
    subject = certificate.x509.subject

    def name(oid) -> str:
        values = subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    return (name(x509.NameOID.GIVEN_NAME), name(x509.NameOID.SURNAME)) == (employee.given_name, employee.surname)


@transaction.atomic
def certificate_renewal_request(*, serial: str, user) -> CertificateRequest:
    """A request for a new certificate replacing `serial`, with the same key and certificate type.

    Auto-approved when PORTAL_RENEWAL_AUTO_APPROVE is on and the identity is unchanged;
    otherwise it waits for an approver like any request.
    """
    certificate = selectors.certificate_of_owner(user=user, serial=serial)
    if certificate.status != Certificate.Status.VALID:
        raise InvalidState(f"The certificate {certificate.serial} is {certificate.status}; request a new one instead.")
    window = timedelta(days=settings.PORTAL_RENEWAL_WINDOW_DAYS)
    if certificate.not_after - timezone.now() > window:
        raise InvalidState(
            f"The certificate {certificate.serial} can be renewed from "
            f"{(certificate.not_after - window):%Y-%m-%d}, {settings.PORTAL_RENEWAL_WINDOW_DAYS} days before it expires."
        )
    if CertificateRequest.objects.filter(renewal_of=certificate).exclude(
        state__in=[CertificateRequest.State.REJECTED, CertificateRequest.State.FAILED]
    ).exists():
        raise InvalidState(f"The certificate {certificate.serial} has been renewed already.")
    request = certificate_request_create(
        employee=certificate.employee,
        submitted_by=user,
        key_type=certificate.key_type,
        certificate_type=certificate.certificate_type,
        renewal_of=certificate,
    )
    if settings.PORTAL_RENEWAL_AUTO_APPROVE and _identity_unchanged(certificate):
        request.state = CertificateRequest.State.APPROVED
        request.decided_at = timezone.now()
        request.reason = "Renewal of an unchanged identity, approved by policy."
        request.save(update_fields=["state", "decided_at", "reason"])
        audit_record(action=AuditAction.REQUEST_AUTO_APPROVED, obj=request, details={"renewal_of": certificate.serial})
        signals.post_approve_request.send(sender=CertificateRequest, request=request, approver=None)
        request.refresh_from_db()
    return request


# --- Leavers ------------------------------------------------------------------------------


@transaction.atomic
def employee_offboard(*, user, actor=None) -> list[Certificate]:
    """Revoke the person's certificates, withdraw pending requests, deactivate the account.

    Escrow records stay: mail encrypted to the leaver must stay readable for the organization.
    """
    from django.contrib.auth import get_user_model

    if actor is not None and not (actor.is_active and actor.has_perm("enrollment.revoke_certificate")):
        raise NotAllowed("Only PKI administrators and approvers can offboard employees.")
    user = get_user_model().objects.select_for_update().get(pk=user.pk)
    if actor is not None and actor.pk == user.pk:
        raise SeparationOfDuties("You cannot offboard yourself.")
    revoked = [
        certificate_revoke(serial=certificate.serial, actor=actor, reason="cessation_of_operation", comment="offboarded")
        for certificate in Certificate.objects.filter(employee__user=user, status=Certificate.Status.VALID)
    ]
    withdrawn = CertificateRequest.objects.filter(employee__user=user, state=CertificateRequest.State.PENDING).update(
        state=CertificateRequest.State.REJECTED, reason="The employee left (offboarded).", decided_at=timezone.now()
    )
    user.is_active = False
    user.save(update_fields=["is_active"])
    audit_record(
        action=AuditAction.EMPLOYEE_OFFBOARDED,
        actor=actor,
        obj=user,
        details={
            "username": user.get_username(),
            "revoked": [certificate.serial for certificate in revoked],
            "pending_requests_withdrawn": withdrawn,
        },
    )
    return revoked
