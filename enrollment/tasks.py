"""Background work, as plain functions that wrap services.

No broker yet: receivers run these in-process after the transaction commits
(`transaction.on_commit`). Each is a thin wrapper, so a Celery `@shared_task` can wrap it
later without changing its callers' arguments.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def directory_publication_run(*, publication_id: int) -> None:
    """Publish or unpublish one certificate now; a failure stays recorded for publish_pending.

    Never raises: it runs after the commit of the request that issued (or revoked) the
    certificate, whose outcome must not depend on the directory.
    """
    from .directory.services import publication_attempt
    from .models import DirectoryPublication

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


def directory_publications_drain() -> str:
    """The periodic retry: attempt what is due. Returns the summary line."""
    from .directory.services import publications_drain

    return str(publications_drain())
