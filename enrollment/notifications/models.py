"""The mail outbox: what must be sent, recorded in the transaction of the step it reports."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class OutboxMail(models.Model):
    """One message to one recipient, rendered when the step happened (text and HTML).

    Written in the workflow's transaction (a rolled-back step leaves no row), sent after
    commit; a failed attempt leaves it pending with the error and the time of the next
    attempt (capped exponential backoff), so nothing is lost while the mail server is down.
    It never holds a secret: no passphrase, key, token or PKCS#12 goes into a mail.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"

    kind = models.CharField(max_length=64, db_index=True, help_text="What the mail reports, e.g. request.pending.")
    about = models.CharField(max_length=64, blank=True, help_text="The object it is about, e.g. certificaterequest:12.")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="outbox_mails"
    )
    to = models.EmailField()
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "outbox mail"
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="outbox_mail_due")]

    def __str__(self) -> str:
        return f"{self.kind} to {self.to} ({self.state})"
