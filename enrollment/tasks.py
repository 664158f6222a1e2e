"""Background work as Celery tasks, each a thin wrapper around a service.

With PORTAL_BROKER_URL set (Redis), tasks go to `celery -A portal worker` and the periodic
ones are scheduled by `celery -A portal beat`; without a broker they run in the web
process, right after the commit that asked for them. Either way the database is the
source of truth: a task that is lost (broker down, worker killed) leaves its row due,
and the next periodic drain, or `manage.py publish_pending`, picks it up.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from .directory.batch import publication_attempt
from .directory.ca_entry import ca_entry_publish as ca_entry_publish_now
from .directory.drain import publications_drain
from .directory.services import directory_configured
from .models import CertificateAuthority, CertificateRequest, DirectoryPublication
from .revocation.services import crls_refresh as refresh_due_crls
from .services.expiry import certificates_expire as expire_due_certificates
from .services.expiry import expiry_notices_send as send_expiry_notices
from .services.issuance import (
    certificate_request_fail,
    issuance_failure_reason,
    issuance_requested,
    issuance_stuck_requests,
)
from .services.issuance import certificate_request_issue as issue_approved_request

logger = logging.getLogger(__name__)


def _enqueue(task, **kwargs) -> None:
    """Send a task, never failing the caller: the outbox row or the schedule catches up."""
    try:
        task.apply_async(kwargs=kwargs)
    except Exception:  # noqa: BLE001 - broker down: the periodic drain retries from the database
        logger.warning("Could not queue %s(%s); the periodic job will pick it up", task.name, kwargs, exc_info=True)


# --- Issuance on the workers ---------------------------------------------------------------------
# Approval (with a broker) commits the decision and sends `issuance_requested`; the task below
# issues. Acknowledged late and requeued when its worker dies: a delivery twice is a no-op
# (the request is `issued`), and a crash mid-way wrote nothing (one transaction). Errors that
# may pass (database, HSM, a bug fixed by a deploy) are retried with exponential backoff; the
# last attempt marks the request `failed` with the reason. Refusals (lint, no recovery agent)
# fail at once, in the service.

ISSUANCE_ATTEMPTS = 5
ISSUANCE_RETRY_SECONDS = 10.0
ISSUANCE_RETRY_MAX_SECONDS = 600.0


def _issuance_retry_delay(retries: int) -> float:
    base = float(getattr(settings, "PORTAL_ISSUANCE_RETRY_SECONDS", ISSUANCE_RETRY_SECONDS))
    # A countdown is waited out unacknowledged: past the broker's visibility timeout the message
    # would be handed to a second worker meanwhile (portal/settings/tasks.py).
    visibility = float(getattr(settings, "PORTAL_BROKER_VISIBILITY_TIMEOUT", 3600))
    return min(base * 2**retries, ISSUANCE_RETRY_MAX_SECONDS, visibility / 2)


@shared_task(
    bind=True,
    name="enrollment.certificate_request_issue",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
def certificate_request_issue(self, *, request_id: int) -> None:
    """Issue the certificate(s) of an approved request; nothing to do if it is no longer approved."""
    attempts = int(getattr(settings, "PORTAL_ISSUANCE_ATTEMPTS", ISSUANCE_ATTEMPTS))
    try:
        issue_approved_request(request_id=request_id)
    except Exception as exc:  # noqa: BLE001 - retried, and the last failure is recorded on the request
        attempt = self.request.retries + 1
        if attempt >= attempts:
            logger.exception(
                "Issuance for request %s failed for good (attempt %d of %d)", request_id, attempt, attempts
            )
            certificate_request_fail(request_id=request_id, reason=issuance_failure_reason(exc, attempts=attempt))
            return
        delay = _issuance_retry_delay(self.request.retries)
        logger.warning(
            "Issuance for request %s failed (attempt %d of %d), retried in %.1f s: %r",
            request_id,
            attempt,
            attempts,
            delay,
            exc,
        )
        raise self.retry(exc=exc, countdown=delay) from None


def certificate_request_issue_soon(*, request_id: int) -> None:
    _enqueue(certificate_request_issue, request_id=request_id)


def _issue_on_request(sender, *, request_id: int, **kwargs) -> None:
    certificate_request_issue_soon(request_id=request_id)


issuance_requested.connect(_issue_on_request, sender=CertificateRequest, dispatch_uid="enrollment.tasks.issue")


@shared_task(name="enrollment.issuance_sweep", ignore_result=True)
def issuance_sweep() -> int:
    """The periodic catch-up: queue again the requests `approved` for long and not issued (a lost task).

    Returns how many were queued. A request queued twice is issued once.
    """
    stuck = issuance_stuck_requests()
    for request_id in stuck:
        certificate_request_issue_soon(request_id=request_id)
    if stuck:
        logger.warning("Issuance sweep: queued %d request(s) approved but not issued: %s", len(stuck), stuck[:20])
    return len(stuck)


@shared_task(name="enrollment.directory_publication_run", ignore_result=True)
def directory_publication_run(*, publication_id: int) -> None:
    """Publish or unpublish one certificate now; a failure stays recorded, due again after backoff.

    Never raises: the outcome of the request that issued (or revoked) the certificate must
    not depend on the directory.
    """
    try:
        publication = DirectoryPublication.objects.filter(pk=publication_id).first()
        if publication is None:
            return
        result = publication_attempt(publication=publication)
        if not result.ok:
            logger.warning(
                "Directory %s of certificate %s failed (retried later): %s",
                result.operation,
                publication.certificate.serial,
                result.error,
            )
    except Exception:  # noqa: BLE001 - see the docstring; the row keeps it due
        logger.exception("Directory publication %s failed unexpectedly", publication_id)


def directory_publication_run_soon(*, publication_id: int) -> None:
    _enqueue(directory_publication_run, publication_id=publication_id)


@shared_task(name="enrollment.directory_publications_drain", ignore_result=True)
def directory_publications_drain() -> str:
    """The periodic retry: attempt what is due (exponential backoff per row). Returns the summary line."""
    if not directory_configured():
        return "no directory configured"
    summary = str(publications_drain())
    logger.info("publish_pending: %s", summary)
    return summary


@shared_task(name="enrollment.ca_entry_publish", ignore_result=True)
def ca_entry_publish(*, ca_id: int) -> None:
    """Put the CA certificate and current CRL on the directory's CA entry, when one is configured."""
    if not directory_configured():
        return
    # ca_entry_publish_now reads the CRL through crl_current (signing it first if stale).
    ca = CertificateAuthority.objects.defer("crl_der").filter(pk=ca_id).first()
    if ca is None:
        return
    try:
        ca_entry_publish_now(ca=ca)
    except Exception:  # noqa: BLE001 - the next CRL refresh publishes again
        logger.exception("Publishing CA %s to the directory failed", ca_id)


def ca_entry_publish_soon(*, ca_id: int) -> None:
    _enqueue(ca_entry_publish, ca_id=ca_id)


@shared_task(name="enrollment.crls_refresh", ignore_result=True)
def crls_refresh() -> int:
    """Reissue every CA's CRL that is due (daily, well before nextUpdate). Returns how many were reissued."""
    reissued = refresh_due_crls()
    for ca in reissued:
        ca_entry_publish_soon(ca_id=ca.pk)
    return len(reissued)


@shared_task(name="enrollment.certificates_expire", ignore_result=True)
def certificates_expire() -> int:
    return expire_due_certificates()


@shared_task(name="enrollment.expiry_notices_send", ignore_result=True)
def expiry_notices_send() -> int:
    return send_expiry_notices()
