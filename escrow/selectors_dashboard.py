"""Reads behind the admin dashboard: keys never picked up, recoveries by status.

Aggregate queries only. The pickup conditions are Qs on Certificate (through its `pickup`,
escrow.PickupCopy) that the certificates' list filter (enrollment/admin_filters.py) applies
too, so the dashboard's number and the list it links to are the same rows. A pickup copy is
deleted by the purge job once its window has closed, so "missed" counts only the copies still
waiting for that job; the audit log (certificate.pkcs12_downloaded) keeps the longer history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q

from enrollment.models import Certificate

from .models import RecoveryRequest

PICKUP_WAITING = "waiting"  # window open, never downloaded
PICKUP_MISSED = "missed"  # window closed, never downloaded


def key_not_downloaded_q(*, window: str, now: datetime) -> Q:
    """Valid certificates whose key the employee has not downloaded, with the window open or closed."""
    never = Q(status=Certificate.Status.VALID, pickup__download_count=0)
    if window == PICKUP_WAITING:
        return never & Q(pickup__expires_at__gt=now)
    if window == PICKUP_MISSED:
        return never & Q(pickup__expires_at__lte=now)
    raise ValueError(f"unknown pickup window {window!r}")


@dataclass(frozen=True)
class PickupCounts:
    waiting: int
    missed: int


def pickup_counts(*, now: datetime) -> PickupCounts:
    row = Certificate.objects.order_by().aggregate(
        waiting=Count("pk", filter=key_not_downloaded_q(window=PICKUP_WAITING, now=now)),
        missed=Count("pk", filter=key_not_downloaded_q(window=PICKUP_MISSED, now=now)),
    )
    return PickupCounts(waiting=row["waiting"], missed=row["missed"])


def recoveries_by_status() -> list[tuple[str, str, int]]:
    """(status, label, count) for every status of a recovery request, in the model's order. One query."""
    groups = RecoveryRequest.objects.order_by("status").values("status").annotate(count=Count("pk"))
    counts = {group["status"]: group["count"] for group in groups}
    return [(value, label, counts.get(value, 0)) for value, label in RecoveryRequest.Status.choices]
