"""Periodic escrow work as Celery tasks (thin wrappers; see enrollment/tasks.py)."""

from __future__ import annotations

from celery import shared_task

from .services.pickups import pickup_copies_purge_expired as purge
from .services.recovery_close import recoveries_expire as expire_recoveries


@shared_task(name="escrow.pickup_copies_purge_expired", ignore_result=True)
def pickup_copies_purge_expired() -> int:
    """Delete pickup copies and wipe recovered keys whose window has closed."""
    return purge()


@shared_task(name="escrow.recoveries_expire", ignore_result=True)
def recoveries_expire() -> int:
    """Approved recoveries that no agent completed within PORTAL_RECOVERY_APPROVAL_DAYS expire."""
    return expire_recoveries()
