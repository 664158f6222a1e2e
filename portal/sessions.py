"""Session rules: an idle timeout (shorter for trusted roles), an absolute lifetime, and a
fresh authentication before a private key leaves the portal.

The session remembers when its user last proved who they are (core.sessions: the log-in,
or a re-authentication) and when it was last used. The middleware ends a session past
either limit; `core.sessions.fresh_authentication_required` guards the key downloads.

"Log out everywhere" (`sessions_end_everywhere`) moves the person's session generation on:
every session started under an older one ends at its next request, and the person's API
tokens are revoked with it (a stolen session could have made one).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout, user_logged_in
from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record
from core.sessions import AUTHENTICATED_AT, LAST_SEEN_AT, mark_authenticated
from enrollment.roles import holds_trusted_role

from .models import ApiToken, SessionGeneration

SESSION_GENERATION = "portal_session_generation"

# last-seen is written at most this often (seconds), so that reading pages does not save the session each time.
LAST_SEEN_RESOLUTION = 60


def idle_limit_seconds(user) -> int:
    minutes = (
        settings.PORTAL_SESSION_IDLE_MINUTES_TRUSTED if holds_trusted_role(user) else settings.PORTAL_SESSION_IDLE_MINUTES
    )
    return minutes * 60


def session_generation(user) -> int:
    return SessionGeneration.objects.filter(user=user).values_list("number", flat=True).first() or 0


@transaction.atomic
def sessions_end_everywhere(*, user) -> int:
    """End every session of `user` (this one too) and revoke their API tokens; audited.
    Returns how many tokens were revoked."""
    generation, _ = SessionGeneration.objects.select_for_update().get_or_create(user=user)
    generation.number += 1
    generation.save(update_fields=["number"])
    revoked = ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    audit_record(
        action=AuditAction.AUTH_LOGGED_OUT_EVERYWHERE,
        actor=user,
        obj=user,
        details={"generation": generation.number, "tokens_revoked": revoked},
    )
    return revoked


def _remember_log_in(sender, *, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        mark_authenticated(request)
        request.session[SESSION_GENERATION] = session_generation(user)


def connect() -> None:
    user_logged_in.connect(_remember_log_in, dispatch_uid="portal.sessions.remember_log_in")


class SessionPolicyMiddleware:
    """Ends sessions that were idle too long or have lived past PORTAL_SESSION_MAX_HOURS."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            self._enforce(request, user)
        return self.get_response(request)

    def _enforce(self, request, user) -> None:
        now = int(time.time())
        session = request.session
        authenticated_at, last_seen = session.get(AUTHENTICATED_AT), session.get(LAST_SEEN_AT)
        if not isinstance(authenticated_at, int) or not isinstance(last_seen, int):
            # A session from before these rules: it starts counting now.
            mark_authenticated(request)
            return
        started_under = session.get(SESSION_GENERATION)
        if not isinstance(started_under, int):
            session[SESSION_GENERATION] = started_under = session_generation(user)
        reason = None
        if started_under != session_generation(user):
            reason = "You logged out everywhere: this session has ended too; log in again."
        elif now - authenticated_at > settings.PORTAL_SESSION_MAX_HOURS * 3600:
            reason = f"Your session ended after {settings.PORTAL_SESSION_MAX_HOURS} hours; log in again."
        elif now - last_seen > idle_limit_seconds(user):
            reason = f"Your session ended after {idle_limit_seconds(user) // 60} minutes without activity; log in again."
        if reason is not None:
            logout(request)
            if not request.path.startswith("/api/"):
                messages.info(request, reason)
            return
        if now - last_seen >= LAST_SEEN_RESOLUTION:
            session[LAST_SEEN_AT] = now
