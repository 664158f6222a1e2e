"""Expiry: certificates past notAfter are marked expired; owners are mailed before it happens."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record

from .. import signals
from ..models import Certificate, ExpiryNotice
from ..notifications.services import notify_certificate_expiring

logger = logging.getLogger(__name__)


def certificates_expire(*, now=None) -> int:
    """Mark certificates past notAfter expired (each in its own transaction). Returns how many."""
    now = now or timezone.now()
    count = 0
    due = Certificate.objects.filter(status=Certificate.Status.VALID, not_after__lte=now).values_list("pk", flat=True)
    for pk in list(due):
        with transaction.atomic():
            certificate = (
                Certificate.objects.select_for_update(no_key=True).filter(pk=pk, status=Certificate.Status.VALID).first()
            )
            if certificate is None:
                continue
            certificate.status = Certificate.Status.EXPIRED
            certificate.save(update_fields=["status"])
            audit_record(action=AuditAction.CERTIFICATE_EXPIRED, obj=certificate, details={"serial": certificate.serial})
            signals.post_expire_certificate.send(sender=Certificate, certificate=certificate)
        count += 1
    return count


def expiry_notices_send(*, thresholds: Sequence[int] | None = None, now=None) -> int:
    """E-mail owners whose certificate expires within a threshold, once per threshold.

    A certificate first seen inside several thresholds gets one mail, for the nearest, and
    the wider thresholds count as sent: nobody gets a "30 days left" after "7 days left".
    """
    thresholds = sorted({int(t) for t in (thresholds or settings.PORTAL_EXPIRY_NOTICE_DAYS)})
    if not thresholds or thresholds[0] < 0:
        raise ValidationError("Expiry thresholds are whole numbers of days, at least 0.")
    now = now or timezone.now()
    sent = 0
    candidates = (
        Certificate.objects.filter(status=Certificate.Status.VALID, not_after__gt=now)
        .filter(not_after__lte=now + timedelta(days=thresholds[-1]))
        .select_related("employee__user")
        .order_by("not_after", "pk")
    )
    for certificate in candidates:
        days_left = (certificate.not_after - now).total_seconds() / 86400
        due = [t for t in thresholds if days_left <= t]
        try:
            sent += _expiry_notice_send(certificate=certificate, due=due)
        except Exception:  # noqa: BLE001 - one mail server hiccup must not stop the others; retried next run
            logger.warning("Expiry notice for %s not sent; retried next run", certificate.serial, exc_info=True)
    return sent


def _expiry_notice_send(*, certificate: Certificate, due: list[int]) -> int:
    """Mail one reminder for the nearest due threshold and record all due ones; 0 if sent before."""
    with transaction.atomic():
        already = set(
            ExpiryNotice.objects.select_for_update()
            .filter(certificate=certificate)
            .values_list("threshold_days", flat=True)
        )
        if min(due) in already:
            return 0
        ExpiryNotice.objects.bulk_create(
            [ExpiryNotice(certificate=certificate, threshold_days=t) for t in due if t not in already]
        )
        notify_certificate_expiring(certificate=certificate)  # sent now: a failure rolls the notices back
        audit_record(
            action=AuditAction.CERTIFICATE_EXPIRY_NOTICE_SENT,
            obj=certificate,
            details={"serial": certificate.serial, "threshold_days": min(due)},
        )
    return 1
