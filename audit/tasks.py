"""Periodic audit work as a Celery task (a thin wrapper around the service)."""

from __future__ import annotations

from celery import shared_task

from .services import audit_checkpoint as checkpoint


@shared_task(name="audit.checkpoint", ignore_result=True)
def audit_checkpoint() -> None:
    """Anchor the head of the audit chain, so that deleting the newest events is detected."""
    checkpoint()
