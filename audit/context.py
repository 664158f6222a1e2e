"""What the audit log learns from the request being served, without the services knowing of requests."""

from __future__ import annotations

import contextvars

# Set by audit.middleware.AuditSourceMiddleware for the duration of a request.
current_source_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_source_ip", default=None)
