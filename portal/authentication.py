"""DRF authentication: API tokens (Bearer/Token) and HTTP Basic; their OpenAPI security schemes.

Token creation and revocation are services (portal/services.py); only the hash is stored.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from .models import ApiToken
from .services import LAST_USED_RESOLUTION, TOKEN_PREFIX, token_hash


def api_token_authenticate(*, token: str) -> ApiToken:
    """The active token `token` names, or AuthenticationFailed saying why not."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise exceptions.AuthenticationFailed("Invalid token.")
    found = ApiToken.objects.select_related("user").filter(key_hash=token_hash(token)).first()
    if found is None:
        raise exceptions.AuthenticationFailed("Invalid token.")
    if found.revoked:
        raise exceptions.AuthenticationFailed("This token has been revoked.")
    if found.expired:
        raise exceptions.AuthenticationFailed("This token has expired; create a new one.")
    if not found.user.is_active:
        raise exceptions.AuthenticationFailed("The token's account is disabled.")
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
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        found = api_token_authenticate(token=token)
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
    would refuse the query with a 500) as the 401 they are."""

    def authenticate_credentials(self, userid, password, request=None):
        if "\x00" in userid or "\x00" in password or len(userid) > 150:
            raise exceptions.AuthenticationFailed("Invalid username/password.")
        return super().authenticate_credentials(userid, password, request)


class BasicScheme(OpenApiAuthenticationExtension):
    target_class = "portal.authentication.BasicAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic", "description": "Username and password (scripts, over TLS)."}
