"""Shared OpenAPI pieces for every API view (drf-spectacular): the error shape and its responses.

    from core.api.schema import error_responses
    @extend_schema(responses={200: MySerializer, **error_responses(400, 401, 403, 404)})
"""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

__all__ = ["ErrorBodySerializer", "ErrorSerializer", "error_responses"]


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
    503: "The portal is not configured for this (no CA key, no directory).",
}


def error_responses(*codes: int) -> dict:
    """Schema entries for the JSON error shape {"error": {"code", "message", "fields"}} under these codes."""
    return {code: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS.get(code, "Error.")) for code in codes}
