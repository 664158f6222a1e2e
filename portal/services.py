"""API tokens: creation and revocation (services) and lookup.

A token is `smp_` followed by 43 URL-safe characters (256 bits of randomness). Only its
SHA-256 hash is stored: a random token of that length needs no salt or slow hash, and a
copy of the database gives nobody a usable token. The plaintext is returned once, by
api_token_create, and never kept or logged.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record
from core.db import retry_on_conflict
from core.exceptions import NotAllowed, NotFound

from .models import ApiToken

TOKEN_PREFIX = "smp_"
PREFIX_LENGTH = len(TOKEN_PREFIX) + 8
MAX_TOKEN_LIFETIME_DAYS = 730
DEFAULT_TOKEN_LIFETIME_DAYS = 90
MAX_ACTIVE_TOKENS = 50
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def credential_stamp(user, *, group_names=None) -> str:
    """Changes whenever the account's password, roles, staff or superuser flag or activity change.

    `group_names`: the user's groups when the caller has read them already (token authentication)."""
    if group_names is None:
        group_names = user.groups.values_list("name", flat=True)
    roles = ",".join(sorted(group_names))
    material = "|".join([user.password, roles, str(user.is_staff), str(user.is_superuser), str(user.is_active)])
    return hashlib.sha256(material.encode()).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    plaintext: str  # shown to its owner once; never stored


# --- Services -------------------------------------------------------------------------------


@retry_on_conflict
@transaction.atomic
def api_token_create(
    *,
    user,
    name: str,
    expires_in_days: int | None = DEFAULT_TOKEN_LIFETIME_DAYS,
    second_factor: bool = False,
    created_by_token: bool = False,
) -> CreatedToken:
    """A new token for `user`; the result carries the plaintext, which is not kept anywhere.

    `second_factor`: the creating request had passed the owner's second factor (the edge knows);
    only such tokens work for trusted roles. `created_by_token`: the request was authenticated
    by a token, which may not make tokens (one would outlive or outrank its parent): tokens come
    from a password (or password and second factor) log-in only.
    """
    if created_by_token:
        raise NotAllowed(
            "A token cannot create tokens: create it on the tokens page, or with your password (HTTP Basic)."
        )
    name = (name or "").strip()
    errors = {}
    if not name:
        errors["name"] = "Give the token a name, e.g. the script or system that will use it."
    elif len(name) > 100:
        errors["name"] = "Use at most 100 characters for the name."
    if expires_in_days is None or not 1 <= expires_in_days <= MAX_TOKEN_LIFETIME_DAYS:
        errors["expires_in_days"] = f"A token lives between 1 and {MAX_TOKEN_LIFETIME_DAYS} days."
    if errors:
        raise ValidationError(errors)
    # A count cap is no unique index: the owner's row is locked (first, core/db.py) and the tokens counted
    # under it, so that parallel creations queue and the last ones see the cap.
    get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk).first()
    active = api_tokens_of_user(user=user).filter(revoked_at__isnull=True, expires_at__gt=timezone.now())
    if active.count() >= MAX_ACTIVE_TOKENS:
        raise ValidationError(f"You have {MAX_ACTIVE_TOKENS} active tokens; revoke one you no longer use first.")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name,
        prefix=plaintext[:PREFIX_LENGTH],
        key_hash=token_hash(plaintext),
        expires_at=timezone.now() + timedelta(days=expires_in_days),
        second_factor=second_factor,
        credential_stamp=credential_stamp(user),
    )
    token.full_clean()
    token.save()
    audit_record(
        action=AuditAction.TOKEN_CREATED,
        actor=user,
        obj=token,
        details={
            "name": name,
            "prefix": token.prefix,
            "expires_at": token.expires_at.isoformat(),
            "second_factor": second_factor,
        },
    )
    return CreatedToken(token=token, plaintext=plaintext)


@transaction.atomic
def api_token_revoke(*, user, token_id: int) -> ApiToken:
    """Revoke one of `user`'s own tokens; anyone else's looks like none at all. Idempotent."""
    token = None
    if 1 <= token_id <= 2**63 - 1:
        token = ApiToken.objects.select_for_update().filter(pk=token_id, user=user).first()
    if token is None:
        raise NotFound(f"You have no token #{token_id}.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(action=AuditAction.TOKEN_REVOKED, actor=user, obj=token, details={"name": token.name, "prefix": token.prefix})
    return token


def api_tokens_revoke_stale(*, user) -> int:
    """Revoke `user`'s active tokens made under another password, other roles or an active account."""
    stamp = credential_stamp(user)
    stale = list(
        ApiToken.objects.filter(user=user, revoked_at__isnull=True).exclude(credential_stamp=stamp).order_by("pk")
    )
    now = timezone.now()
    for token in stale:
        token.revoked_at = now
        token.save(update_fields=["revoked_at"])
        audit_record(
            action=AuditAction.TOKEN_REVOKED,
            obj=token,
            details={"name": token.name, "prefix": token.prefix, "reason": "password, roles or account changed"},
        )
    return len(stale)


# --- Selectors ------------------------------------------------------------------------------


def api_tokens_of_user(*, user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")
