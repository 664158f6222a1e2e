"""Lockout after repeated failed log-ins, on every surface (django-axes), and its audit events.

Surfaces. The log-in page (/login/), the admin's (/admin/login/), the password asked again
before a key download (/reauthenticate/) and HTTP Basic on the API all call Django's
authenticate() with the request; LockoutBackend, first in AUTHENTICATION_BACKENDS, refuses a
locked account or source there before any other backend checks a password. API tokens name
no account: ApiTokenAuthentication counts unknown tokens against their source
(api_token_guess_record) and refuses a locked source before looking a token up.

Rules (the AXES_* settings in settings.py):
- an account and a source address are each locked once AXES_FAILURE_LIMIT (5) failed log-ins
  were counted for it within the cool-off (PORTAL_LOCKOUT_COOLOFF_MINUTES, default 30),
  which runs from the last counted failure;
- attempts refused while locked are not counted and write nothing: a flood against a locked
  account costs one indexed read per attempt;
- a successful log-in clears that account's failures, not its source's: an attacker's own
  valid account must not wipe the count of the accounts guessed from the same address;
- an administrator unlocks at once (lockout_unlock: `manage.py unlock_account`, or the
  admin's Axes → Access attempts), audited as auth.unlocked.

Accounts are counted under their lockout key (lockout_key): the account's username, whatever
letter case the attempt used, or, for a name that is no account, "unknown:" and a hash, so
that a password typed into the name box is not kept in axes' table either.

Audit. Failed log-ins whose password was checked stay auth.login_failed events (audit/
receivers.py), at most AXES_FAILURE_LIMIT per account and per source within a cool-off;
refusals of a locked account or source are no events; reaching the limit is one
auth.locked_out event, with the counts.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model, user_logged_in
from django.db import transaction
from django.db.models import Q, Sum
from django.http import HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.utils import timezone

from audit.events import AuditAction
from audit.receivers import LOGIN_REFUSED_LOCKED_OUT, login_failed_details, unknown_account_sha256
from audit.services import audit_record

logger = logging.getLogger(__name__)

UNKNOWN_ACCOUNT_PREFIX = "unknown:"
# What an API token attempt tells axes: no account, so it is counted per source only.
TOKEN_CREDENTIALS = {"username": None}
LOCKED_OUT_CODE = "locked_out"


def cool_off(request=None) -> timedelta:
    """AXES_COOLOFF_TIME: read on each use, so that a changed setting (or a test) takes effect."""
    return timedelta(minutes=settings.PORTAL_LOCKOUT_COOLOFF_MINUTES)


def locked_out_message() -> str:
    minutes = settings.PORTAL_LOCKOUT_COOLOFF_MINUTES
    return (
        "Too many failed log-ins for this account or from this address: log-in is locked for "
        f"{minutes} minutes after the last failed attempt. An administrator can unlock it sooner."
    )


# --- How axes counts: the lockout key and the lockout parameters ---------------------------


def lockout_key(username: str | None) -> str | None:
    """The name failures are counted under: the account's username (any letter case), or a hash for no account."""
    if username is None:
        return None
    username = str(username)[:150]
    account = (
        get_user_model()
        .objects.filter(username__iexact=username)
        .order_by("pk")
        .values_list("username", flat=True)
        .first()
    )
    if account is not None:
        return account
    return UNKNOWN_ACCOUNT_PREFIX + unknown_account_sha256(username.casefold())


def lockout_username(request, credentials: dict | None = None) -> str | None:
    """AXES_USERNAME_CALLABLE: the lockout key of the attempt's username (memoized on the request)."""
    if credentials is None:
        return None
    username = credentials.get("username")
    if username is None:
        return None
    keys = getattr(request, "_portal_lockout_keys", None)
    if keys is None:
        keys = {}
        try:
            request._portal_lockout_keys = keys
        except AttributeError:  # an object that takes no attributes: look the key up each time
            pass
    if username not in keys:
        keys[username] = lockout_key(username)
    return keys[username]


def client_address(request) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: REMOTE_ADDR, the address the audit log records (audit.middleware)."""
    return request.META.get("REMOTE_ADDR") or None


def lockout_parameters(request_or_attempt, credentials: dict | None = None) -> list[str]:
    """AXES_LOCKOUT_PARAMETERS: per account and (separately) per source; a token attempt only per source.

    Without this, the failures of every attempt that names no account (API tokens) would add up
    under one "username" None, from all sources: one guesser would lock the API for everybody.
    """
    if credentials is not None and credentials.get("username") is None:
        return ["ip_address"]
    return ["username", "ip_address"]


class LockoutBackend(AxesStandaloneBackend):
    """axes' backend, marking the attempts it refuses, which then are no auth.login_failed events.

    authenticate() without a request (the test client's login(), a shell) is no network log-in
    and has no source to count it against: it is let through to the next backend. Every
    surface passes the request (tests/portal/test_lockout.py tries each).
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        try:
            return super().authenticate(request, username=username, password=password, **kwargs)
        except AxesBackendPermissionDenied:
            setattr(request, LOGIN_REFUSED_LOCKED_OUT, True)
            raise


class ApiLogInAttempt:
    """An API request as axes and the authentication backends see it: its metadata, never its body.

    axes copies a failed attempt's form data (request.POST). On a DRF request that parses the
    body, and a body that does not parse, or of a type no parser takes, would raise before the
    failure is counted: a way to guess without limit. API credentials come in a header anyway.
    """

    def __init__(self, request):
        http_request = getattr(request, "_request", request)
        self.META = http_request.META
        self.GET = http_request.GET
        self.POST = QueryDict()
        self.method = http_request.method
        self.path = http_request.path
        self.path_info = http_request.path_info


def refused_as_locked_out(request) -> bool:
    """Whether axes locked this attempt out: it was refused, or its failure reached the limit."""
    return bool(getattr(request, "axes_locked_out", False))


def api_token_source_locked(attempt: ApiLogInAttempt) -> bool:
    return not AxesProxyHandler.is_allowed(attempt, dict(TOKEN_CREDENTIALS))


def api_token_guess_record(attempt: ApiLogInAttempt) -> bool:
    """Count an unknown API token against the attempt's source; whether that locked the source."""
    AxesProxyHandler.user_login_failed(sender=__name__, credentials=dict(TOKEN_CREDENTIALS), request=attempt)
    return refused_as_locked_out(attempt)


def account_failures_clear(*, username: str) -> int:
    """After a successful log-in: the account's failures start again from 0 (its sources' other failures stay)."""
    attempts = AccessAttempt.objects.filter(username=lockout_key(username))
    if not attempts.exists():  # the common case costs a read, not a write
        return 0
    count, _ = attempts.delete()
    return count


# --- What a locked-out client is told -------------------------------------------------------


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 with the lockout page, or under /api/ the API's JSON error shape."""
    retry_after = str(settings.PORTAL_LOCKOUT_COOLOFF_MINUTES * 60)
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {"error": {"code": LOCKED_OUT_CODE, "message": locked_out_message(), "fields": {}}}, status=429
        )
    else:
        context = {"message": locked_out_message(), "admin": request.path.startswith("/admin/")}
        response = render(request, "portal/locked_out.html", context, status=429)
    response["Retry-After"] = retry_after
    return response


# --- Audit ----------------------------------------------------------------------------------


def _failures(attempts) -> int:
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


def audit_locked_out(sender, *, request, username=None, ip_address=None, **kwargs) -> None:
    """axes' user_locked_out, sent when a counted failure reaches the limit: one auth.locked_out event.

    axes sends it for each attempt it refuses, too; those were marked by LockoutBackend (or, for
    tokens, never counted) and are no events.
    """
    if getattr(request, LOGIN_REFUSED_LOCKED_OUT, False):
        return
    since = (getattr(request, "axes_attempt_time", None) or timezone.now()) - cool_off()
    recent = AccessAttempt.objects.filter(attempt_time__gte=since)
    failures = {}
    if username is not None:
        failures["account"] = _failures(recent.filter(username=username))
    if ip_address:
        failures["source"] = _failures(recent.filter(ip_address=ip_address))
    locked = [scope for scope, count in failures.items() if count >= settings.AXES_FAILURE_LIMIT]
    if not locked:
        return
    typed = (getattr(request, "axes_credentials", None) or {}).get("username")
    details = login_failed_details(typed) if typed is not None else {"via": "api_token"}
    details.update(
        {
            "locked": locked,
            "failures": failures,
            "cooloff_minutes": settings.PORTAL_LOCKOUT_COOLOFF_MINUTES,
            "path": str(getattr(request, "path", ""))[:200],
        }
    )
    audit_record(action=AuditAction.AUTH_LOCKED_OUT, details=details)
    logger.warning("Log-in locked (%s) after %s failed attempts", ", ".join(locked), failures)


def clear_on_log_in(sender, *, request, user, **kwargs) -> None:
    account_failures_clear(username=user.get_username())


# --- Unlock ---------------------------------------------------------------------------------


def _account_details(key: str) -> dict:
    if key.startswith(UNKNOWN_ACCOUNT_PREFIX):
        return {"unknown_account_sha256": key.removeprefix(UNKNOWN_ACCOUNT_PREFIX)}
    return {"username": key}


@transaction.atomic
def lockout_unlock(*, actor, account_key: str | None = None, source: str | None = None, via: str, operator: str = "") -> int:
    """End a lockout at once: forget the failures of an account (from every source) and/or of a source.

    `account_key` is a lockout key (lockout_key() of a typed username, or an AccessAttempt's
    username). Returns the number of failures forgotten; records auth.unlocked when there were any.
    """
    if not account_key and not source:
        raise ValueError("Name an account or a source to unlock.")
    scope = Q()
    if account_key:
        scope |= Q(username=account_key)
    if source:
        scope |= Q(ip_address=source)
    attempts = AccessAttempt.objects.filter(scope)
    failures = sum(attempts.select_for_update().values_list("failures_since_start", flat=True))
    if failures == 0:
        return 0
    attempts.delete()
    details = {**(_account_details(account_key) if account_key else {}), "failures": failures, "via": via}
    if source:
        details["source"] = source
    if operator:
        details["operator"] = operator
    user = None
    if account_key and not account_key.startswith(UNKNOWN_ACCOUNT_PREFIX):
        user = get_user_model().objects.filter(username=account_key).first()
    audit_record(action=AuditAction.AUTH_UNLOCKED, actor=actor, obj=user, details=details)
    return failures


def connect() -> None:
    user_locked_out.connect(audit_locked_out, dispatch_uid="portal.lockout.audit_locked_out")
    user_logged_in.connect(clear_on_log_in, dispatch_uid="portal.lockout.clear_on_log_in")
