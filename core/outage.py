"""A database outage is a 503 "try again", never a 500 with a traceback; and /api/ answers JSON.

OutageMiddleware (in MIDDLEWARE near the top, outside everything that reads the database:
sessions, log-in, the second factor, the lockout) answers a request that failed with
django.db's OperationalError or InterfaceError (the server is unreachable, went away, refused
the connection, or a transaction could not complete):

- under /api/: the API's JSON error shape, code "unavailable", status 503, Retry-After;
- elsewhere: templates/503.html (rendered without the request: the context processors would
  read the database again), status 503, Retry-After.

OCSP answers an OCSP tryLater itself (enrollment.revocation.views): its clients understand
OCSP statuses, not pages.

A view's exception reaches process_exception. An exception raised by another middleware
(the session or the user read by a middleware below this one) is turned into a 500 by
Django's handler before it gets here, so the got_request_exception signal, sent while the
exception is handled, marks the request, and the 500 is replaced by the 503 on the way out.
The log keeps one line per failed request (and Django's own record of a middleware's
exception); the answer never carries a traceback, whatever DEBUG says.

Under /api/ every other error answer that is not JSON already (Django's 400/403 pages,
DEBUG's technical 404 and 500 pages, a refusal by a middleware) is rewritten into the error
shape too (core.api.errors.as_json_error).
"""

from __future__ import annotations

import logging
import sys

from django.core.signals import got_request_exception
from django.dispatch import receiver
from django.http import HttpResponse
from django.template.loader import render_to_string

from core.api.errors import (
    DATABASE_UNAVAILABLE,
    RETRY_AFTER_SECONDS,
    as_json_error,
    database_unavailable_response,
    safe_text,
)

__all__ = [
    "DATABASE_UNAVAILABLE", "RETRY_AFTER_SECONDS", "OutageMiddleware", "is_database_unavailable", "log_outage",
    "outage_response",
]

logger = logging.getLogger(__name__)

_MARK = "_portal_database_unavailable"


def is_database_unavailable(exc: BaseException | None) -> bool:
    return isinstance(exc, DATABASE_UNAVAILABLE)


def outage_response(request) -> HttpResponse:
    """The 503 for `request`: JSON under /api/, the 503 page elsewhere."""
    if request.path.startswith("/api/"):
        return database_unavailable_response(request)
    try:
        page = render_to_string("503.html")
    except Exception:  # the page must not fail in turn (a template that reads the database, …)
        logger.exception("The 503 page could not be rendered")
        page = "The portal is not available at the moment. Try again in a minute.\n"
        response = HttpResponse(page, status=503, content_type="text/plain; charset=utf-8")
    else:
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def log_outage(request, exc: BaseException) -> None:
    logger.warning(
        "Database unavailable, answered 503: %s %s: %s: %s",
        request.method, safe_text(request.path, 200), type(exc).__name__, safe_text(exc, 200),
    )


@receiver(got_request_exception, dispatch_uid="core.outage.mark")
def _mark_database_unavailable(sender, request=None, **kwargs):
    exc = sys.exc_info()[1]
    if request is not None and is_database_unavailable(exc):
        setattr(request, _MARK, exc)


class OutageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        exc = getattr(request, _MARK, None)
        if exc is not None and response.status_code >= 500:
            log_outage(request, exc)
            return outage_response(request)
        return as_json_error(request, response)

    def process_exception(self, request, exception):
        if is_database_unavailable(exception):
            log_outage(request, exception)
            return outage_response(request)
        return None
