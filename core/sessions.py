"""When the user last proved who they are, kept in the session, and the check key release needs.

The log-in (portal.sessions connects it) and a re-authentication call `mark_authenticated`;
views that hand out a private key are wrapped in `fresh_authentication_required`, which
sends the user to the re-authentication page when the password is older than
PORTAL_REAUTH_MINUTES.
"""

from __future__ import annotations

import time
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse

AUTHENTICATED_AT = "portal_authenticated_at"
LAST_SEEN_AT = "portal_last_seen_at"


def mark_authenticated(request) -> None:
    """The user just proved who they are (log-in or re-authentication)."""
    now = int(time.time())
    request.session[AUTHENTICATED_AT] = now
    request.session[LAST_SEEN_AT] = now


def recently_authenticated(request) -> bool:
    """Whether the password was given within PORTAL_REAUTH_MINUTES: key release needs it."""
    authenticated_at = request.session.get(AUTHENTICATED_AT) if hasattr(request, "session") else None
    if not isinstance(authenticated_at, int):
        return False
    return time.time() - authenticated_at <= settings.PORTAL_REAUTH_MINUTES * 60


def fresh_authentication_required(view):
    """Key release: ask for the password again unless it was given in the last few minutes."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not recently_authenticated(request):
            return redirect(f"{reverse('reauthenticate')}?{urlencode({'next': request.get_full_path()})}")
        return view(request, *args, **kwargs)

    return wrapped
