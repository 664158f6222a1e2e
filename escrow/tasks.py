"""Periodic escrow and audit work as Celery tasks (thin wrappers; see enrollment/tasks.py)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="escrow.audit_checkpoint", ignore_result=True)
def audit_checkpoint() -> None:
    """Anchor the head of the audit chain, so that deleting the newest events is detected."""
    from .audit import audit_checkpoint as checkpoint

    checkpoint()
