"""Helpers for the mail tests (this module holds no tests): a mail server that refuses, the
mails one person got, the links in a mail, and the check that no mail carries a secret."""

from __future__ import annotations

import re
import smtplib
from urllib.parse import urlsplit

from django.conf import settings
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from recovery_testing import AGENT_PASSPHRASE  # noqa: F401 - the mail tests import it from here

REFUSING_BACKEND = "mail_testing.RefusingBackend"


class RefusingBackend(BaseEmailBackend):
    """A mail server that is down: every send raises SMTPException."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPException("421 mail server unavailable (test)")


def mails_to(address: str, *, but_escrow_notice: bool = True) -> list:
    """The mails to `address`; without escrow's own plain-text notice "... is in escrow" (escrow.services.escrow)."""
    return [
        message for message in mail.outbox
        if message.to == [address] and not (but_escrow_notice and message.subject.endswith(" is in escrow"))
    ]


def html_of(message) -> str:
    (html,) = [content for content, mimetype in message.alternatives if mimetype == "text/html"]
    return html


def links(text: str) -> list[str]:
    """The portal's absolute links in a text, in order (no duplicates)."""
    found = re.findall(re.escape(settings.PORTAL_SITE_URL) + r"/[^\s\"<>]*", text)
    return list(dict.fromkeys(found))


def path_of(url: str) -> str:
    """What the test client asks for: the path and query of an absolute link of the portal."""
    assert url.startswith(settings.PORTAL_SITE_URL + "/"), url
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def assert_mail_shape(message, *, link: str) -> None:
    """Text and HTML parts, the link in both, no attachment, nothing that looks like a secret."""
    assert link in message.body, message.body
    html = html_of(message)
    assert f'href="{link.replace("&", "&amp;")}"' in html, html
    assert message.attachments == []
    assert message.extra_headers.get("Auto-Submitted") == "auto-generated"
    assert_no_secrets(message)


SECRET_MARKERS = ("-----BEGIN", "PRIVATE KEY-----", "passphrase:", "password:", "token:")


def assert_no_secrets(message, *, secrets: tuple[str, ...] = ()) -> None:
    everything = "\n".join([message.subject, message.body, *[c for c, _ in message.alternatives]])
    for marker in SECRET_MARKERS:
        assert marker.lower() not in everything.lower(), marker
    for secret in secrets:
        assert secret not in everything
    assert message.attachments == []
