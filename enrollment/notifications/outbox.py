"""The mail outbox: a message per recipient recorded in the caller's transaction, sent after
commit outside any transaction, retried with capped exponential backoff (services.py says why).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.mail import mail_deliver, mail_render

from . import recipients
from .models import OutboxMail

logger = logging.getLogger(__name__)

# While one process sends a row, others leave it alone this long.
CLAIM_SECONDS = 300
RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 6 * 3600


def _display_name(user) -> str:
    employee = getattr(user, "employee", None)
    if employee is not None:
        return employee.display_name
    return user.get_full_name() or user.get_username()


@transaction.atomic
def _record(*, kind: str, about: str, users: Iterable, template: str, subject: str, context: dict) -> list[OutboxMail]:
    """One row per active recipient with an address (each person once), sent after commit."""
    rows, seen = [], set()
    for user in users:
        if user is None or not user.is_active or user.pk in seen:
            continue
        address = recipients.mail_address(user)
        if not address:
            continue
        seen.add(user.pk)
        rendered = mail_render(
            template=template,
            subject=subject,
            context={**context, "recipient": user, "name": _display_name(user), "site_url": settings.PORTAL_SITE_URL},
        )
        row = OutboxMail(
            kind=kind, about=about, recipient=user, to=address,
            subject=rendered.subject[:255], body_text=rendered.text, body_html=rendered.html,
        )
        # The recipient is a saved account in hand: no query to check that it exists (its key does).
        row.full_clean(exclude=["recipient"])
        row.save()
        rows.append(row)
    if rows:
        transaction.on_commit(partial(mail_outbox_send, mail_ids=[row.pk for row in rows]), robust=True)
    return rows


def _drop_unsent(*, about: str, kinds: Sequence[str]) -> None:
    """The step was decided: mails asking someone to decide it that have not gone out yet never will."""
    OutboxMail.objects.filter(about=about, kind__in=list(kinds), state=OutboxMail.State.PENDING).delete()


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: 1 min, 2, 4, … capped at 6 hours."""
    return timedelta(seconds=min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, min(attempts - 1, 30))))


def _claim(row: OutboxMail, now: datetime) -> bool:
    """Compare-and-set, so that two processes never send the same row at once."""
    claimed = OutboxMail.objects.filter(
        pk=row.pk, state=OutboxMail.State.PENDING, last_attempt_at=row.last_attempt_at
    ).update(last_attempt_at=now, next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
    return bool(claimed)


def _attempt(row: OutboxMail, *, now: datetime) -> bool | None:
    """Send one row: True sent, False failed (due again after backoff), None taken by another process."""
    if not _claim(row, now):
        return None
    try:
        mail_deliver(to=row.to, subject=row.subject, text=row.body_text, html=row.body_html)
    except Exception as exc:  # noqa: BLE001 - any failure of the mail server leaves the row pending
        attempts = row.attempts + 1
        OutboxMail.objects.filter(pk=row.pk).update(
            attempts=attempts,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            next_attempt_at=timezone.now() + retry_delay(attempts),
        )
        logger.warning("Mail %s (%s to %s) not sent; retried later: %s", row.pk, row.kind, row.to, exc)
        return False
    OutboxMail.objects.filter(pk=row.pk).update(
        state=OutboxMail.State.SENT, sent_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
    )
    return True


def mail_outbox_send(*, mail_ids: Sequence[int]) -> int:
    """Send these pending rows now (after the commit that wrote them). Never raises; returns how many went."""
    sent = 0
    for row in OutboxMail.objects.filter(pk__in=list(mail_ids), state=OutboxMail.State.PENDING).order_by("pk"):
        try:
            sent += bool(_attempt(row, now=timezone.now()))
        except Exception:  # noqa: BLE001 - e.g. the database went away: the row stays due for the drain
            logger.exception("Mail %s could not be attempted; the periodic job retries it", row.pk)
    return sent


@dataclass
class DrainSummary:
    sent: int = 0
    failed: int = 0
    pending: int = 0

    def __str__(self) -> str:
        return f"sent {self.sent}, failed {self.failed}, pending {self.pending}"


def mail_outbox_drain(*, limit: int | None = None, now: datetime | None = None) -> DrainSummary:
    """The periodic retry: attempt every pending row that is due, oldest first."""
    now = now or timezone.now()
    due = OutboxMail.objects.filter(state=OutboxMail.State.PENDING, next_attempt_at__lte=now).order_by(
        "next_attempt_at", "pk"
    )
    summary = DrainSummary()
    for row in list(due[:limit] if limit else due):
        outcome = _attempt(row, now=now)
        summary.sent += outcome is True
        summary.failed += outcome is False
    summary.pending = OutboxMail.objects.filter(state=OutboxMail.State.PENDING).count()
    return summary
