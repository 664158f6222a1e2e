"""Mail after commit: a rolled-back step mails nobody, a failing mail server fails no step.

Two ways to send, both through Django's mail backends (EMAIL_BACKEND; the console backend
prints to the terminal of `make run`):

- `mail_render` + `mail_deliver`: one message with a text part and an HTML alternative,
  from the templates `templates/mail/<name>.txt` and `<name>.html`. The outbox of
  `enrollment.notifications` records what `mail_render` returns in the workflow's
  transaction and calls `mail_deliver` after commit and from its periodic retry.
- `mail_on_commit`: a plain-text notice sent once the transaction commits, best effort
  (a failure is logged and the notice is gone). For notices that may be lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection, send_mail
from django.db import transaction
from django.template.loader import render_to_string

# Seconds an SMTP server may take to answer before the attempt counts as failed (when
# EMAIL_TIMEOUT is not set): mail is sent after commit, in the process that committed.
DEFAULT_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def mail_render(*, template: str, subject: str, context: dict) -> RenderedMail:
    """Render `mail/<template>.txt` and `mail/<template>.html` with `context`.

    The subject is one line (newlines would be a header injection; Django refuses them).
    """
    context = {**context, "subject": subject}
    return RenderedMail(
        subject=" ".join(subject.split()),
        text=render_to_string(f"mail/{template}.txt", context).strip() + "\n",
        html=render_to_string(f"mail/{template}.html", context),
    )


def mail_deliver(*, to: str, subject: str, text: str, html: str = "") -> None:
    """Send one message now (text, and HTML as an alternative). Raises when the backend fails."""
    connection = get_connection(fail_silently=False)
    if getattr(connection, "timeout", "absent") is None:  # the SMTP backend without EMAIL_TIMEOUT
        connection.timeout = DEFAULT_TIMEOUT_SECONDS
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        connection=connection,
        # RFC 3834: no out-of-office replies to a machine.
        headers={"Auto-Submitted": "auto-generated"},
    )
    if html:
        message.attach_alternative(html, "text/html")
    message.send()


def mail_on_commit(*, to: list[str], subject: str, body: str) -> None:
    """Send a notice once the transaction commits; a mail failure is logged, never fatal."""
    recipients = sorted({address for address in to if address})
    if not recipients:
        return

    def send() -> None:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)

    transaction.on_commit(send, robust=True)
