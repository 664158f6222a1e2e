"""Gives audit events recorded while a request is served the client's address."""

from __future__ import annotations

from .context import current_source_ip


class AuditSourceMiddleware:
    """Makes the client's address available to audit events recorded during the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = current_source_ip.set(request.META.get("REMOTE_ADDR") or None)
        try:
            return self.get_response(request)
        finally:
            current_source_ip.reset(token)
