"""Where the second factor is demanded: every page and the admin (middleware), and the API (permission class).

The rules (who needs it, how a code is checked) are second_factor.py's; these edges only
ask and refuse. portal/admin_site.py makes the admin refuse too, should a request get past
the middleware.

- Pages and the admin: a user who needs the factor and whose session has not passed it is
  sent to the set-up page (first log-in) or the verify page, whatever they asked for, but
  for those pages, log-in, log-out, static files and the API.
- The API: SecondFactorForTrustedRoles, among the default permission classes (so in every
  view: core.api.permissions.default_permission_classes), lets a trusted role's call through
  only if its session passed the factor, its API token was created by a request that had,
  or it carries a current code in the header `X-OTP`. Otherwise 403 with the code
  "second_factor_required" and what to do.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission

from core.exceptions import SecondFactorRequired

from .second_factor import (
    second_factor_enrolled,
    second_factor_required,
    second_factor_satisfied,
    second_factor_verify,
    session_verified,
)

OTP_HEADER = "X-OTP"
_OTP_META_KEY = "HTTP_X_OTP"
# Set on the HttpRequest once its API call has been judged, so that a code is checked (and spent) once.
_VERIFIED_ATTRIBUTE = "portal_second_factor_verified"
_REFUSAL_ATTRIBUTE = "portal_second_factor_refusal"


# --- Pages and the admin -------------------------------------------------------------------


def second_factor_redirect(request, *, next_url: str | None = None):
    """To the set-up page (no device yet) or the verify page, coming back to `next_url` afterwards."""
    name = "second_factor:verify" if second_factor_enrolled(request.user) else "second_factor:setup"
    if next_url is None:
        next_url = request.get_full_path() if request.method in ("GET", "HEAD") else request.path
    return redirect(f"{reverse(name)}?{urlencode({'next': next_url})}")


def _needs_no_second_factor(path: str) -> bool:
    """The paths a user who has not passed the factor yet may still reach."""
    open_paths = {reverse("login"), reverse("logout"), reverse("admin:logout")}
    # The set-up page is the root of the second-factor pages; the API answers for itself (JSON).
    open_prefixes = (reverse("second_factor:setup"), "/api/", "/" + settings.STATIC_URL.lstrip("/"))
    return path in open_paths or path.startswith(open_prefixes)


class SecondFactorMiddleware:
    """After SessionPolicyMiddleware: a trusted role's session reaches nothing but the second-factor pages until it passes."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not _needs_no_second_factor(request.path)
            and not second_factor_satisfied(request)
        ):
            return second_factor_redirect(request)
        return self.get_response(request)


# --- The API -------------------------------------------------------------------------------


def api_request_second_factor(request) -> bool:
    """Whether this API call passed a second factor: a verified session, a token made by a request
    that had, or a current code in X-OTP (checked once per request, and spent).

    Also what api_token_create is told about the request that creates a token.
    """
    django_request = getattr(request, "_request", request)
    known = getattr(django_request, _VERIFIED_ATTRIBUTE, None)
    if known is not None:
        return known
    user = request.user
    verified = False
    if user is not None and user.is_authenticated:
        if isinstance(getattr(request, "successful_authenticator", None), SessionAuthentication):
            verified = session_verified(django_request)
        elif getattr(request, "auth", None) is not None:
            verified = bool(getattr(request.auth, "second_factor", False))
        code = django_request.META.get(_OTP_META_KEY, "")
        if not verified and code:
            try:
                second_factor_verify(user=user, code=code, via="api", recovery_codes=False)
            except SecondFactorRequired as exc:
                setattr(django_request, _REFUSAL_ATTRIBUTE, exc.message)
            else:
                verified = True
    setattr(django_request, _VERIFIED_ATTRIBUTE, verified)
    return verified


def _how_to_comply(request) -> str:
    django_request = getattr(request, "_request", request)
    refusal = getattr(django_request, _REFUSAL_ATTRIBUTE, None)
    if not second_factor_enrolled(request.user):
        return (
            "Your account holds a trusted role and needs a second factor, which it has not set up yet: log in on "
            f"the web ({reverse('login')}) and set up your authenticator app first."
        )
    ways = (
        f"send the current code of your authenticator app in the header {OTP_HEADER}, or use an API token "
        "created after a log-in with your second factor"
    )
    if refusal:
        return f"{refusal} Your account holds a trusted role: {ways}."
    if isinstance(getattr(request, "successful_authenticator", None), SessionAuthentication):
        return f"This session has not passed your second factor: verify it at {reverse('second_factor:verify')}, or {ways}."
    if getattr(request, "auth", None) is not None:
        return f"This API token was created without your second factor: {ways}."
    return f"Your account holds a trusted role: {ways}."


class SecondFactorForTrustedRoles(BasePermission):
    """Trusted roles call the API only with their second factor (see api_request_second_factor)."""

    def has_permission(self, request, view) -> bool:
        if not second_factor_required(request.user) or api_request_second_factor(request):
            return True
        raise SecondFactorRequired(_how_to_comply(request))
