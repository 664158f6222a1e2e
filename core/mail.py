"""Mail sent once the transaction commits: a rolled-back step mails nobody, a failing mail server fails no step."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction


def mail_on_commit(*, to: list[str], subject: str, body: str) -> None:
    """Send a notice once the transaction commits; a mail failure is logged, never fatal."""
    recipients = sorted({address for address in to if address})
    if not recipients:
        return

    def send() -> None:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)

    transaction.on_commit(send, robust=True)
