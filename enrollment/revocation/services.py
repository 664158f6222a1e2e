"""Revocation and the CRL: a revocation marks the CRL stale; the CRL served is never stale.

Why not re-sign the CRL in every revocation's transaction: signing reads every revoked
certificate of the CA, so one revocation cost O(revoked) and offboarding a department was
quadratic (issue 13: 3.4 s per revocation at 100,000 revoked). Instead a revocation sets
`crl_stale_since` on its CA in its own transaction, and one CRL is signed for every
revocation since, by whichever comes first:

- `crl_current`, which every served CRL goes through (/pki/<ca>.crl, the API, the
  directory's CA entry, published after each revocation's commit when a directory is
  configured): it signs a new CRL when the stored one is stale, so the CRL served never
  lacks a committed revocation (the bound is zero at the origin; HTTP caches may keep the
  previous one for the response's max-age, as they could before);
- the periodic job (`crls_refresh`, hourly under beat), so a stored CRL is stale at most
  that long when nobody asks for it.

OCSP reads the certificate rows, so it answers "revoked" as soon as the revocation commits.

Why no revocation is ever missing from a CRL that clears the mark: the revocation updates the
CA row (its lock) in the same transaction as the certificate, and the signer locks that row
before it reads the revoked certificates. A revocation that commits before the signer's lock
is in what it reads; one that commits after marks the CRL stale again.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record
from core.db import retry_on_conflict
from core.exceptions import ConfigurationError, InvalidState, NotAllowed, NotFound, PortalError, TryAgain
from escrow.services.pickups import pickup_copy_destroy

from .. import selectors, signals
from ..keystore.ca import key_backend_for
from ..models import Certificate, CertificateAuthority
from ..notifications.services import notify_certificate_revoked
from ..pki import crl as pki_crl
from ..pki import lint as pki_lint

logger = logging.getLogger(__name__)

# What an employee may say about their own certificate without an administrator.
OWNER_REVOCATION_REASONS = ("key_compromise", "superseded")


def _check_revocation_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if reason not in pki_crl.REVOCATION_REASON_NAMES:
        raise ValidationError(
            {
                "reason": f"Unknown revocation reason {reason!r}; choose one of {', '.join(pki_crl.REVOCATION_REASON_NAMES)}."
            }
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
        _revocation_failure_record(serial=serial, actor=actor, reason=reason, error="conflicting transactions")
        raise
    except PortalError as exc:
        logger.error("Revocation of certificate %s NOT done: %s", serial, exc.message)
        _revocation_failure_record(serial=serial, actor=actor, reason=reason, error=exc.message)
        raise
    except Exception as exc:
        logger.exception("Revocation of certificate %s NOT done: unexpected error", serial)
        _revocation_failure_record(serial=serial, actor=actor, reason=reason, error=type(exc).__name__)
        raise


def _revocation_failure_record(*, serial: str, actor, reason: str, error: str) -> None:
    """The failed revocation, audited after its rollback: the dashboard counts those still not done.

    Inside a caller's transaction (a batch that revokes many) the record stands or falls with it.
    Recording must never hide the failure it records: with the database gone (or the caller's
    transaction broken), the ERROR line is what remains.
    """
    try:
        certificate = Certificate.objects.filter(serial=serial).only("pk").first()
        audit_record(
            action=AuditAction.CERTIFICATE_REVOCATION_FAILED,
            actor=actor,
            obj=certificate,
            details={"serial": serial, "reason": str(reason)[:64], "error": str(error)[:300]},
        )
    except Exception:  # noqa: BLE001 - the revocation's own failure is the one the caller must see
        logger.exception("The failed revocation of certificate %s could not be recorded", serial)


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
        .defer("issuer__crl_der")  # the CA's CRL (megabytes at 100,000 revoked) is not read here
        .get(pk=certificate.pk)
    )
    if certificate.status != Certificate.Status.VALID:
        raise InvalidState(
            f"The certificate {certificate.serial} is {certificate.status} already; revocation is final."
        )
    _crl_mark_stale(ca_id=certificate.issuer_id)
    certificate.status = Certificate.Status.REVOKED
    certificate.revoked_at = timezone.now().replace(microsecond=0)
    certificate.revocation_reason = reason
    certificate.revoked_by = actor if actor is not None and actor.is_authenticated else None
    certificate.revocation_comment = (comment or "").strip()[:2000]
    certificate.save(update_fields=["status", "revoked_at", "revocation_reason", "revoked_by", "revocation_comment"])
    # Nobody downloads the key of a revoked certificate; the escrowed copy stays for old mail.
    pickup_copy_destroy(certificate=certificate)
    audit_record(
        action=AuditAction.CERTIFICATE_REVOKED,
        actor=actor,
        obj=certificate,
        details={"serial": certificate.serial, "reason": reason, "comment": certificate.revocation_comment},
    )
    signals.post_revoke_certificate.send(sender=Certificate, certificate=certificate, actor=actor)
    notify_certificate_revoked(certificate=certificate)
    return certificate


def _crl_mark_stale(*, ca_id: int) -> None:
    """The CA's stored CRL lacks a revocation from now on; locks the CA row (lock order step 4).

    Unconditional on purpose: an UPDATE that skipped an already stale row would not wait for
    a signer holding the row, which could then clear the mark without this revocation.
    """
    now = timezone.now()
    CertificateAuthority.objects.filter(pk=ca_id).update(
        crl_stale_since=Coalesce("crl_stale_since", models.Value(now, output_field=models.DateTimeField()))
    )


def _crl_sign(ca: CertificateAuthority) -> bytes:
    """Sign a new CRL for `ca`, whose row the caller has locked, and keep it as the current one."""
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
    # SMC016: a key backend (an HSM's mechanism) must not have signed with SHA-1; nothing is stored then.
    if findings := pki_lint.sbr_crl_findings(crl):
        raise ConfigurationError(f"The CRL of {ca} was not published: {'; '.join(map(str, findings))}")
    ca.crl_number += 1
    ca.crl_der = crl.public_bytes(Encoding.DER)
    ca.crl_next_update = next_update
    ca.crl_stale_since = None
    ca.save(update_fields=["crl_number", "crl_der", "crl_next_update", "crl_stale_since"])
    audit_record(action=AuditAction.CRL_GENERATED, obj=ca, details={"crl_number": ca.crl_number})
    return bytes(ca.crl_der)


def _locked(ca_id: int) -> CertificateAuthority:
    # The old CRL is not read: it is replaced, or (by _crl_reissue_if_due) fetched when still current.
    return CertificateAuthority.objects.select_for_update(no_key=True).defer("crl_der").get(pk=ca_id)


@retry_on_conflict
@transaction.atomic
def crl_generate(*, ca: CertificateAuthority) -> bytes:
    """Sign a new CRL for `ca` and keep it as the current one, due or not."""
    return _crl_sign(_locked(ca.pk))


def _crl_due(*, next_update, stale_since) -> bool:
    # Stale (a revocation since), never signed, or a day old: reissued daily, so the CRL
    # served never comes near its nextUpdate.
    if stale_since is not None or next_update is None:
        return True
    refresh_after = timedelta(days=settings.PORTAL_CRL_VALIDITY_DAYS - 1)
    return timezone.now() >= next_update - refresh_after


@retry_on_conflict
@transaction.atomic
def _crl_reissue_if_due(*, ca_id: int) -> bytes:
    ca = _locked(ca_id)
    if not _crl_due(next_update=ca.crl_next_update, stale_since=ca.crl_stale_since):
        # Signed by a concurrent reader while this one waited for the lock: one CRL per batch.
        return bytes(CertificateAuthority.objects.values_list("crl_der", flat=True).get(pk=ca_id))
    return _crl_sign(ca)


def crl_current(*, ca: CertificateAuthority) -> bytes:
    """The CRL to serve: the stored one, or a new one first when it is stale or due.

    Reads the row again: the caller's copy may predate the last revocation.
    """
    stored = (
        CertificateAuthority.objects.filter(pk=ca.pk)
        .values_list("crl_der", "crl_next_update", "crl_stale_since")
        .first()
    )
    if stored is None:
        raise NotFound(f"No certificate authority {ca}.")
    crl_der, next_update, stale_since = stored
    if crl_der and not _crl_due(next_update=next_update, stale_since=stale_since):
        return bytes(crl_der)
    return _crl_reissue_if_due(ca_id=ca.pk)


def crls_refresh() -> list[CertificateAuthority]:
    """The periodic CRL job: reissue each CA's CRL that is stale or due. Returns the CAs reissued."""
    reissued = []
    for ca in CertificateAuthority.objects.with_key().defer("crl_der").order_by("pk"):
        if _crl_due(next_update=ca.crl_next_update, stale_since=ca.crl_stale_since):
            crl_generate(ca=ca)
            reissued.append(ca)
    return reissued
