"""One JSON shape for every API error: {"error": {"code", "message", "fields"}}.

Messages may quote what the caller sent (a choice that is not one, a serial that names
nothing): every message and field name leaves here with control, format (bidi, zero-width),
surrogate, private-use and unassigned characters written as visible \\uXXXX escapes and cut
to MAX_MESSAGE characters, so an answer always encodes and never carries raw hostile text.
"""

import logging
import unicodedata

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.urls import Resolver404, resolve
from django.utils.http import escape_leading_slashes
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.exceptions import PortalError

logger = logging.getLogger(__name__)

MAX_MESSAGE = 500
# Unicode categories written as escapes: controls, format characters (bidi overrides,
# zero-width), surrogates, private use, unassigned, line and paragraph separators.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# The database went away (or a transaction could not complete): try again, not a server error.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
DATABASE_UNAVAILABLE_MESSAGE = "The portal's database is not available at the moment. Try again in a minute."
RETRY_AFTER_SECONDS = 30


def safe_text(value, limit: int = MAX_MESSAGE) -> str:
    """`value` as text fit for an error message: invisible and unencodable characters escaped, bounded."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return "".join(
        f"\\u{ord(char):04x}" if unicodedata.category(char) in _ESCAPED_CATEGORIES else char for char in text
    )


def error_body(*, code: str, message: str, fields: dict | None = None) -> dict:
    """The error shape, its texts made safe (safe_text)."""
    return {
        "error": {
            "code": safe_text(code, 100),
            "message": safe_text(message),
            "fields": {
                safe_text(key, 100): [safe_text(item) for item in (items if isinstance(items, list) else [items])]
                for key, items in (fields or {}).items()
            },
        }
    }


def error_response(*, code: str, message: str, http_status: int, fields: dict | None = None) -> Response:
    return Response(error_body(code=code, message=message, fields=fields), status=http_status)


def json_error(*, code: str, message: str, http_status: int, fields: dict | None = None) -> JsonResponse:
    """The error shape outside DRF (middleware, Django's error handlers)."""
    return JsonResponse(error_body(code=code, message=message, fields=fields), status=http_status)


def database_unavailable_response(request) -> JsonResponse:
    response = json_error(code="unavailable", message=DATABASE_UNAVAILABLE_MESSAGE, http_status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _flatten(detail) -> dict:
    if isinstance(detail, dict):
        return {key: [str(item) for item in (value if isinstance(value, list) else [value])] for key, value in detail.items()}
    return {}


def exception_handler(exc, context):
    if isinstance(exc, DATABASE_UNAVAILABLE):
        logger.warning("Database unavailable: %s: %s", type(exc).__name__, safe_text(exc, 200))
        response = error_response(code="unavailable", message=DATABASE_UNAVAILABLE_MESSAGE, http_status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if isinstance(exc, PortalError):
        response = error_response(code=exc.code, message=exc.message, http_status=exc.http_status)
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {}
        fields = {key: value for key, value in fields.items() if key != "__all__"}
        return error_response(
            code="invalid", message=" ".join(exc.messages), http_status=status.HTTP_400_BAD_REQUEST, fields=fields
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        message = "; ".join(f"{key}: {' '.join(value)}" for key, value in fields.items()) or "Invalid input."
        if isinstance(exc.detail, list):
            message = " ".join(str(item) for item in exc.detail)
        response.data = error_body(code="invalid", message=message, fields=fields)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        response.data = error_body(code=code if isinstance(code, str) else "error", message=str(detail))
    return response


# What an error answer that is not JSON yet (Django's pages, a middleware's refusal) is called.
_STATUS_CODES = {
    400: ("invalid", "Bad request."),
    401: ("not_authenticated", "Authentication credentials were not provided."),
    403: ("forbidden", "You may not do this."),
    404: ("not_found", "Nothing is at this address."),
    405: ("method_not_allowed", "Method not allowed."),
    406: ("not_acceptable", "Could not satisfy the request Accept header."),
    413: ("too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Unsupported media type."),
    429: ("throttled", "Too many requests."),
    503: ("unavailable", "The portal is not available at the moment. Try again in a minute."),
}
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Vary")


def as_json_error(request, response):
    """`response` under /api/, in the error shape if it is an error that is not JSON already.

    Django answers some errors itself, in HTML: its 400 and 403 pages, DEBUG's technical pages
    (a 500 among them: the traceback stays in the log, not in the answer)."""
    if response.status_code < 400 or not request.path.startswith("/api/"):
        return response
    if response.get("Content-Type", "").split(";")[0].strip() == "application/json":
        return response
    code, message = _STATUS_CODES.get(
        response.status_code, ("error" if response.status_code < 500 else "server_error", "The request failed.")
    )
    if response.status_code == 404:
        message = f"Nothing is at {request.path}."
    elif response.status_code == 500:
        message = "The server failed to answer this request; the failure is logged."
    converted = json_error(code=code, message=message, http_status=response.status_code)
    for header in _KEPT_HEADERS:
        if header in response:
            converted[header] = response[header]
    return converted


@csrf_exempt
def api_not_found(request, path: str = ""):
    """The catch-all route under /api/ (portal/urls.py, last): a URL that names nothing, in JSON.

    A route rather than only handler404, which DEBUG bypasses for its technical page. An address
    that would name something with a trailing slash says so (APPEND_SLASH no longer redirects
    here: a POST cannot follow a redirect)."""
    message = f"Nothing is at {request.path}."
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            message += f" Did you mean {escape_leading_slashes(request.path)}/ ?"
    return json_error(code="not_found", message=message, http_status=404)


def page_not_found(request, exception=None):
    """Django's handler404: under /api/, a URL that names nothing gets the JSON error shape too.

    Wired in portal/urls.py: `handler404 = "core.api.errors.page_not_found"`.
    """
    if request.path.startswith("/api/"):
        return json_error(code="not_found", message=f"Nothing is at {request.path}.", http_status=404)
    return defaults.page_not_found(request, exception)
