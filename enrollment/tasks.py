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

from .directory.ca_entry import ca_entry_publish as ca_entry_publish_now
from .directory.drain import publications_drain
from .directory.services import directory_configured, publication_attempt
from .models import CertificateAuthority, DirectoryPublication
from .revocation.services import crls_refresh as refresh_due_crls
from .services.expiry import certificates_expire as expire_due_certificates
from .services.expiry import expiry_notices_send as send_expiry_notices

logger = logging.getLogger(__name__)


def _enqueue(task, **kwargs) -> None:
    """Send a task, never failing the caller: the outbox row or the schedule catches up."""
    try:
        task.apply_async(kwargs=kwargs)
    except Exception:  # noqa: BLE001 - broker down: the periodic drain retries from the database
        logger.warning("Could not queue %s(%s); the periodic job will pick it up", task.name, kwargs, exc_info=True)


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
                result.operation, publication.certificate.serial, result.error,
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
    ca = CertificateAuthority.objects.filter(pk=ca_id).first()
    if ca is None or not directory_configured():
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
