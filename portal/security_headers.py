"""The Permissions-Policy header on every answer: the portal uses no powerful browser feature.

Django has no setting for it; PORTAL_PERMISSIONS_POLICY in settings.py lists the features
and their allow-lists ("()" for none), as the header's structured-field syntax wants them.
The Content-Security-Policy comes from django-csp (CONTENT_SECURITY_POLICY in settings.py).
"""

from __future__ import annotations

from django.conf import settings

HEADER = "Permissions-Policy"


def permissions_policy(features: dict[str, list[str]]) -> str:
    """'camera=(), geolocation=()' for {"camera": [], "geolocation": []}; "self" is written bare."""
    parts = []
    for feature, origins in features.items():
        allowed = " ".join(origin if origin == "self" else f'"{origin}"' for origin in origins)
        parts.append(f"{feature}=({allowed})")
    return ", ".join(parts)


class PermissionsPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.value = permissions_policy(settings.PORTAL_PERMISSIONS_POLICY)

    def __call__(self, request):
        response = self.get_response(request)
        if self.value and HEADER not in response:
            response[HEADER] = self.value
        return response
