"""Issuance and delivery: key generation, pre-issuance lint, signing, escrow and the pickup
copy for an approved request; the owner's PKCS#12 download while the pickup window is open."""

from __future__ import annotations

import logging

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record
from core.exceptions import InvalidState, IssuanceError, PortalError
from escrow.services.escrow import escrow_record_create
from escrow.services.pickups import pickup_copy_create, pickup_copy_destroy, pickup_copy_open

from .. import selectors, signals
from ..bundles import certificate_pkcs12, pkcs12_check_format, pkcs12_check_passphrase
from ..keystore.ca import key_backend_for
from ..models import Certificate, CertificateAuthority, CertificateRequest
from ..pki.keys import generate_private_key
from ..pki.lint import blocking_findings, lint_before_signing
from ..pki.profiles import Subscriber, name_text, smime_certificate_builder
from ..pki.serials import serial_text
from .authorities import issuer_info, organization_from_settings

logger = logging.getLogger(__name__)


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


@transaction.atomic
def certificate_pkcs12_export(*, user, serial: str, passphrase: str, fmt: str = "modern") -> tuple[Certificate, bytes]:
    """The owner's key, certificate and chain as PKCS#12, while the pickup window is open."""
    certificate = selectors.certificate_of_owner(user=user, serial=serial)
    pkcs12_check_passphrase(passphrase)
    pkcs12_check_format(fmt)
    if certificate.status != Certificate.Status.VALID:
        raise InvalidState(f"The certificate {certificate.serial} is {certificate.status}.")
    key = pickup_copy_open(certificate=certificate)
    bundle = certificate_pkcs12(certificate=certificate, key=key, passphrase=passphrase, fmt=fmt)
    if certificate.usage == Certificate.Usage.SIGNING:
        # A signing key is never escrowed: the one download is its only copy outside the
        # employee's hands, so it does not outlive it.
        pickup_copy_destroy(certificate=certificate)
    audit_record(
        action=AuditAction.CERTIFICATE_PKCS12_DOWNLOADED,
        actor=user,
        obj=certificate,
        details={"format": fmt, "pickup_destroyed": certificate.usage == Certificate.Usage.SIGNING},
    )
    return certificate, bundle
