"""DRF authentication: API tokens (Bearer/Token) and HTTP Basic; their OpenAPI security schemes.

Token creation and revocation are services (portal/services.py); only the hash is stored.
Both lock out (portal/lockout.py): HTTP Basic counts failed passwords per account and per
source, as the log-in page does; unknown tokens are counted per source, and a locked source
is refused (429, code "locked_out") before any token is looked up.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from django.db.models import F
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from . import lockout
from .models import ApiToken
from .services import LAST_USED_RESOLUTION, TOKEN_PREFIX, api_tokens_revoke_stale, credential_stamp, token_hash


class LockedOut(exceptions.APIException):
    """429: too many failed log-ins for the account or from the source (portal/lockout.py)."""

    status_code = 429
    default_code = lockout.LOCKED_OUT_CODE

    def __init__(self):
        super().__init__(lockout.locked_out_message())
        self.wait = settings.PORTAL_LOCKOUT_COOLOFF_MINUTES * 60  # the error handler sends it as Retry-After


class InvalidToken(exceptions.AuthenticationFailed):
    """No token has this value: a guess, as far as the portal can tell, and counted as one."""

    def __init__(self):
        super().__init__("Invalid token.")


def api_token_authenticate(*, token: str) -> ApiToken:
    """The active token `token` names, or AuthenticationFailed saying why not."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise InvalidToken()
    # The token, its user and the user's groups (for the credential stamp) in one query: a row per group.
    rows = list(
        ApiToken.objects.select_related("user")
        .filter(key_hash=token_hash(token))
        .annotate(group_name=F("user__groups__name"))
        .order_by()
    )
    if not rows:
        raise InvalidToken()
    found = rows[0]
    group_names = [row.group_name for row in rows if row.group_name is not None]
    if found.revoked:
        raise exceptions.AuthenticationFailed("This token has been revoked.")
    if found.expired:
        raise exceptions.AuthenticationFailed("This token has expired; create a new one.")
    if not found.user.is_active:
        raise exceptions.AuthenticationFailed("The token's account is disabled.")
    if found.credential_stamp != credential_stamp(found.user, group_names=group_names):
        api_tokens_revoke_stale(user=found.user)
        raise exceptions.AuthenticationFailed(
            "This token was revoked: the account's password or roles changed since it was made."
        )
    now = timezone.now()
    if found.last_used_at is None or now - found.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=found.pk).update(last_used_at=now)
        found.last_used_at = now
    return found


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>` (or `Token <token>`). Needs no CSRF token: no cookie is involved."""

    keywords = ("bearer", "token")

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower().decode(errors="replace") not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: send `Authorization: Bearer <token>`.")
        attempt = lockout.ApiLogInAttempt(request)
        if lockout.api_token_source_locked(attempt):
            raise LockedOut()
        try:
            try:
                token = parts[1].decode("ascii")
            except UnicodeDecodeError:
                raise InvalidToken() from None
            found = api_token_authenticate(token=token)
        except InvalidToken:
            if lockout.api_token_guess_record(attempt):
                raise LockedOut() from None
            raise
        return found.user, found

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from POST /api/v1/tokens/ or the page /tokens/: "
            "`Authorization: Bearer smp_…` (`Token smp_…` works too).",
        }


class BasicAuthentication(authentication.BasicAuthentication):
    """DRF's HTTP Basic, refusing credentials no account can have (a NUL character: PostgreSQL
    would refuse the query with a 500) as the 401 they are, and locking out as the log-in page does.

    Django's authenticate() gets the request as axes should see it (lockout.ApiLogInAttempt:
    never the body, which DRF would parse there); a locked account or source is a 429, and a
    success clears the account's failures, as a log-in on the page does."""

    def authenticate_credentials(self, userid, password, request=None):
        if "\x00" in userid or "\x00" in password or len(userid) > 150:
            raise exceptions.AuthenticationFailed("Invalid username/password.")
        attempt = lockout.ApiLogInAttempt(request) if request is not None else None
        user = authenticate(request=attempt, username=userid, password=password)
        if user is None:
            if attempt is not None and lockout.refused_as_locked_out(attempt):
                raise LockedOut()
            raise exceptions.AuthenticationFailed("Invalid username/password.")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        lockout.account_failures_clear(username=user.get_username())
        return (user, None)


class BasicScheme(OpenApiAuthenticationExtension):
    target_class = "portal.authentication.BasicAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic", "description": "Username and password (scripts, over TLS)."}
