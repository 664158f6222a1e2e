"""The outbox's periodic retry as a Celery task (a thin wrapper; see enrollment/tasks.py)."""

from __future__ import annotations

import logging

from celery import shared_task

from .outbox import mail_outbox_drain as drain

logger = logging.getLogger(__name__)


@shared_task(name="notifications.mail_outbox_drain", ignore_result=True)
def mail_outbox_drain() -> str:
    """Send the mail that is due (pending, its backoff over). Returns the summary line."""
    summary = str(drain())
    logger.info("send_pending_mail: %s", summary)
    return summary
