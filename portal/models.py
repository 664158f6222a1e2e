"""API tokens: what a script presents instead of a password.

Only a SHA-256 hash of each token is stored; the token itself is shown once, when it is
created. The prefix (the token's first characters) names it in lists and logs.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. the script that uses it.")
    prefix = models.CharField(max_length=16, db_index=True, help_text="The token's first characters.")
    key_hash = models.CharField("SHA-256 of the token", max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: does not expire.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Trusted roles call the API only with tokens made after their second factor (portal/second_factor_guards.py).
    second_factor = models.BooleanField(
        "created with the second factor",
        default=False,
        help_text="The request that created it had passed its owner's second factor.",
    )
    # What the account's password, roles and state were when the token was made (services.credential_stamp):
    # a token dies with the credentials and roles it was made under.
    credential_stamp = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = "API token"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def active(self) -> bool:
        return not self.revoked and not self.expired


class DirectoryAccount(models.Model):
    """A Django user that belongs to the directory: only these log in with a directory password.

    Created by the first directory log-in of a name no local account has (origin "login"),
    or by an administrator with `manage.py link_directory_account` (origin "linked", and then
    only the linked entry logs in as it). A user without this row is a local account
    (bootstrap superuser, break-glass, demo): the directory never logs in as it, nor changes it.
    """

    class Origin(models.TextChoices):
        LOGIN = "login", "created by a directory log-in"
        LINKED = "linked", "linked by an administrator"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="directory_account")
    entry_dn = models.CharField("entry DN", max_length=1024, help_text="The directory entry, normalized.")
    origin = models.CharField(max_length=16, choices=Origin.choices)
    linked_by = models.CharField(max_length=150, blank=True, help_text="Who linked it (origin linked).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "directory account"

    def __str__(self) -> str:
        return f"{self.user} = {self.entry_dn}"


class SessionGeneration(models.Model):
    """How many times a person ended all their sessions ("log out everywhere"): a session remembers
    the number it started under (portal/sessions.py) and ends when the number has moved on."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="session_generation")
    number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"session generation {self.number} of {self.user}"
