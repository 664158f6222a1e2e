"""One JSON shape for every API error: {"error": {"code", "message", "fields"}}."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.exceptions import PortalError


def error_response(*, code: str, message: str, http_status: int, fields: dict | None = None) -> Response:
    return Response({"error": {"code": code, "message": message, "fields": fields or {}}}, status=http_status)


def _flatten(detail) -> dict:
    if isinstance(detail, dict):
        return {key: [str(item) for item in (value if isinstance(value, list) else [value])] for key, value in detail.items()}
    return {}


def exception_handler(exc, context):
    if isinstance(exc, PortalError):
        return error_response(code=exc.code, message=exc.message, http_status=exc.http_status)
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
        response.data = {"error": {"code": "invalid", "message": message, "fields": fields}}
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        response.data = {
            "error": {"code": code if isinstance(code, str) else "error", "message": str(detail), "fields": {}}
        }
    return response


def page_not_found(request, exception=None):
    """Django's handler404: under /api/, a URL that names nothing gets the JSON error shape too.

    Wired in portal/urls.py: `handler404 = "core.api.errors.page_not_found"`.
    """
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": {"code": "not_found", "message": f"Nothing is at {request.path}.", "fields": {}}}, status=404
        )
    return defaults.page_not_found(request, exception)
