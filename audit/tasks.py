"""Periodic audit work as Celery tasks (thin wrappers around the services)."""

from __future__ import annotations

from celery import shared_task

from .services import audit_checkpoint as checkpoint
from .verification import audit_chain_advance, audit_chain_verify_full


@shared_task(name="audit.checkpoint", ignore_result=True)
def audit_checkpoint() -> None:
    """Anchor the head of the audit chain, so that deleting the newest events is detected."""
    checkpoint()


@shared_task(name="audit.chain_verify", ignore_result=True)
def audit_chain_verify() -> None:
    """Verify the events appended since the stored point, up to the head (what the admin then shows)."""
    audit_chain_advance(limit=None)


@shared_task(name="audit.chain_verify_full", ignore_result=True)
def audit_chain_verify_full_task() -> None:
    """Re-verify the whole chain from the genesis: an old event edited after it was verified shows here."""
    audit_chain_verify_full()
