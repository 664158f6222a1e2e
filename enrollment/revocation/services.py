"""Revocation and the CRL: revoking reissues the CRL at once; the periodic job reissues what is due."""

from __future__ import annotations

import logging
from datetime import timedelta

from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record
from core.db import retry_on_conflict
from core.exceptions import InvalidState, NotAllowed, NotFound, PortalError, TryAgain
from escrow.services.pickups import pickup_copy_destroy

from .. import selectors, signals
from ..keystore.ca import key_backend_for
from ..models import Certificate, CertificateAuthority
from ..notifications.services import notify_certificate_revoked
from ..pki import crl as pki_crl

logger = logging.getLogger(__name__)

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


def certificate_revoke(*, serial: str, actor, reason: str, comment: str = "") -> Certificate:
    """Revoke for good. `actor` None is the system (command line, offboarding, expiry of a pair).

    Revokers (perm enrollment.revoke_certificate) may give any reason; an owner may revoke
    their own certificate as key_compromise or superseded; anyone else learns nothing.

    A revocation happens or the caller is told: a transaction aborted by a concurrent one is
    rerun (core/db.py), and after the last retry the caller gets TryAgain (503). Every
    failure to revoke that is not a refusal (an unknown serial, no permission, revoked
    already) is logged at ERROR: a revocation that did not happen must not go unnoticed.
    """
    try:
        return _certificate_revoke(serial=serial, actor=actor, reason=reason, comment=comment)
    except (ValidationError, NotFound, NotAllowed, InvalidState):
        raise
    except TryAgain:
        logger.error("Revocation of certificate %s NOT done: conflicting transactions, retries exhausted", serial)
        raise
    except PortalError as exc:
        logger.error("Revocation of certificate %s NOT done: %s", serial, exc.message)
        raise
    except Exception:
        logger.exception("Revocation of certificate %s NOT done: unexpected error", serial)
        raise


@retry_on_conflict(log=logger, log_level=logging.ERROR)
@transaction.atomic
def _certificate_revoke(*, serial: str, actor, reason: str, comment: str = "") -> Certificate:
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
    # The lock order (core/db.py): the certificate, then its CA (the CRL reissued below), the chain last.
    certificate = (
        Certificate.objects.select_for_update(of=("self",), no_key=True)
        .select_related("employee__user", "issuer")
        .get(pk=certificate.pk)
    )
    if certificate.status != Certificate.Status.VALID:
        raise InvalidState(f"The certificate {certificate.serial} is {certificate.status} already; revocation is final.")
    CertificateAuthority.objects.select_for_update(no_key=True).filter(pk=certificate.issuer_id).first()
    certificate.status = Certificate.Status.REVOKED
    certificate.revoked_at = timezone.now().replace(microsecond=0)
    certificate.revocation_reason = reason
    certificate.revoked_by = actor if actor is not None and actor.is_authenticated else None
    certificate.revocation_comment = (comment or "").strip()[:2000]
    certificate.save(
        update_fields=["status", "revoked_at", "revocation_reason", "revoked_by", "revocation_comment"]
    )
    # Nobody downloads the key of a revoked certificate; the escrowed copy stays for old mail.
    pickup_copy_destroy(certificate=certificate)
    audit_record(
        action=AuditAction.CERTIFICATE_REVOKED,
        actor=actor,
        obj=certificate,
        details={"serial": certificate.serial, "reason": reason, "comment": certificate.revocation_comment},
    )
    # Relying parties learn of a revocation at the next CRL fetch: reissue it now, in this transaction.
    crl_generate(ca=certificate.issuer)
    signals.post_revoke_certificate.send(sender=Certificate, certificate=certificate, actor=actor)
    notify_certificate_revoked(certificate=certificate)
    return certificate


@retry_on_conflict
@transaction.atomic
def crl_generate(*, ca: CertificateAuthority) -> bytes:
    """Sign a new CRL for `ca` and keep it as the current one."""
    ca = CertificateAuthority.objects.select_for_update(no_key=True).get(pk=ca.pk)
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
    for ca in CertificateAuthority.objects.with_key().order_by("pk"):
        if _crl_due(ca):
            crl_generate(ca=ca)
            reissued.append(ca)
    return reissued
