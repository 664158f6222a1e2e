"""Shared OpenAPI pieces for every API view (drf-spectacular): the error shape and its responses.

    from core.api.schema import error_responses
    @extend_schema(responses={200: MySerializer, **error_responses(400, 401, 403, 404)})
"""

import copy

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

__all__ = ["ErrorBodySerializer", "ErrorSerializer", "document_too_many_requests", "error_responses"]


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text='Machine-readable: "invalid", "not_found", "separation_of_duties", …')
    message = serializers.CharField(help_text="What went wrong, for a person.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Per input field, what is wrong with it (for code \"invalid\"); empty otherwise.",
    )


class ErrorSerializer(serializers.Serializer):
    """The one shape of every 4xx (and 503) answer."""

    error = ErrorBodySerializer()


ERROR_DESCRIPTIONS = {
    400: "Invalid input: error.fields says what is wrong with which field.",
    401: "Not authenticated (HTTP Basic, a Bearer token, or a session).",
    403: "Authenticated, but not allowed to do this.",
    404: "No such object, or not one you may see.",
    405: "Method not allowed.",
    409: "The object's state does not allow this (already decided, revoked, …).",
    410: "Gone: the key's pickup window has closed.",
    413: "The request body is too large (code \"too_large\").",
    503: "The portal is not configured for this (no CA key, no directory), or its database is not "
    "available (code \"unavailable\"; Retry-After says when to try again).",
}


def error_responses(*codes: int) -> dict:
    """Schema entries for the JSON error shape {"error": {"code", "message", "fields"}} under these codes."""
    return {code: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS.get(code, "Error.")) for code in codes}


_OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
TOO_MANY_REQUESTS = {
    "description": "Too many requests: the API's throttles (code \"throttled\"), or too many failed log-ins "
    "for the account or from the address (code \"locked_out\"). Retry-After says when to try again.",
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


DATABASE_UNAVAILABLE = {
    "description": "The portal's database is not available (code \"unavailable\"), or the portal is not "
    "configured for this. Retry-After says when to try again.",
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
TOO_LARGE = {
    "description": "The request body is larger than the API accepts (code \"too_large\"; core/api/parsers.py).",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


# How trusted roles pass their second factor on the API (portal/second_factor_guards.py): documented
# as a scheme of its own, combined with basicAuth or tokenAuth, not as a parameter of every operation.
SECOND_FACTOR_CODE = {
    "type": "apiKey",
    "in": "header",
    "name": "X-OTP",
    "description": "Approvers, auditors, key recovery agents and PKI administrators: the current six-digit "
    "code of their authenticator app, with HTTP Basic or with a token created before a second-factor "
    "log-in; a code is accepted once. Without it such calls answer 403 (code \"second_factor_required\"). "
    "A token created with the second factor (on the page /tokens/ after a second-factor log-in, or by "
    "POST /api/v1/tokens/ with X-OTP) needs no code.",
}


def document_too_many_requests(result, generator, request, public):
    """drf-spectacular postprocessing hook: what every operation may answer, in the error shape.

    429 (the throttles and the lockout apply to every view), 503 (the database outage:
    core/outage.py) and, with a request body, 413 (the parser's size bound), so no view
    documents them itself."""
    if "Error" not in result.get("components", {}).get("schemas", {}):
        return result
    result["components"].setdefault("securitySchemes", {})["otpCode"] = copy.deepcopy(SECOND_FACTOR_CODE)
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method in _OPERATIONS:
                responses = operation.setdefault("responses", {})
                responses.setdefault("429", copy.deepcopy(TOO_MANY_REQUESTS))
                responses.setdefault("503", copy.deepcopy(DATABASE_UNAVAILABLE))
                if "requestBody" in operation:
                    responses.setdefault("413", copy.deepcopy(TOO_LARGE))
    return result
