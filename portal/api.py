"""API tokens in the API (/api/v1/tokens/): create (the token is in the answer, once), list own, revoke own."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import error_responses
from core.api.views import ListView, checked_id, id_parameter, validated_body

from .models import ApiToken
from .second_factor_guards import api_request_second_factor
from .services import (
    DEFAULT_TOKEN_LIFETIME_DAYS,
    MAX_TOKEN_LIFETIME_DAYS,
    api_token_create,
    api_token_revoke,
    api_tokens_of_user,
)


class ApiTokenSerializer(serializers.ModelSerializer):
    revoked = serializers.BooleanField(read_only=True)
    expired = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at", "revoked", "expired",
            "second_factor",
        ]
        read_only_fields = ["second_factor"]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(help_text="The token itself. Shown this once; the portal keeps only its hash.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=100,
        help_text="What the token is for, e.g. the script that uses it.",
        error_messages={
            "blank": "Give the token a name, e.g. the script or system that will use it.",
            "required": "Give the token a name, e.g. the script or system that will use it.",
        },
    )
    expires_in_days = serializers.IntegerField(
        min_value=1,
        max_value=MAX_TOKEN_LIFETIME_DAYS,
        default=DEFAULT_TOKEN_LIFETIME_DAYS,
        help_text=f"Lifetime in days (1 to {MAX_TOKEN_LIFETIME_DAYS}; default {DEFAULT_TOKEN_LIFETIME_DAYS}).",
        error_messages={
            "min_value": f"A token lives between 1 and {MAX_TOKEN_LIFETIME_DAYS} days.",
            "max_value": f"A token lives between 1 and {MAX_TOKEN_LIFETIME_DAYS} days.",
        },
    )


class TokenListCreateView(ListView):
    # Anyone authenticated (the default permission class), for their own tokens only.
    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        return api_tokens_of_user(user=self.request.user)

    @extend_schema(
        summary="Your API tokens",
        description="Your own tokens, newest first, without the secrets.",
        responses={200: ApiTokenSerializer(many=True), **error_responses(401, 404)},
    )
    def get(self, request):
        return self.list(request)

    @extend_schema(
        summary="Create an API token",
        description="The answer carries the token once; send it as `Authorization: Bearer <token>`. "
        "It acts with your permissions until it expires or you revoke it. Trusted roles create it with their "
        "second factor (a verified session, or the current code in the header `X-OTP`): `second_factor` says so.",
        request=ApiTokenCreateSerializer,
        responses={201: ApiTokenCreatedSerializer, **error_responses(400, 401)},
    )
    def post(self, request):
        data = validated_body(ApiTokenCreateSerializer, request)
        created = api_token_create(
            user=request.user,
            name=data["name"],
            expires_in_days=data["expires_in_days"],
            second_factor=api_request_second_factor(request),
            created_by_token=isinstance(request.auth, ApiToken),
        )
        body = ApiTokenSerializer(created.token).data
        body["token"] = created.plaintext
        response = Response(body, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response


class TokenDetailView(APIView):
    @extend_schema(
        summary="Revoke one of your API tokens",
        description="At once and for good. Revoking a revoked token again changes nothing.",
        request=None,
        parameters=[id_parameter("token_id", "The token's id.")],
        responses={204: None, **error_responses(401, 404)},
    )
    def delete(self, request, token_id: int):
        # Someone else's token is a 404, as one that does not exist (the service decides).
        api_token_revoke(user=request.user, token_id=checked_id(token_id, "token"))
        return Response(status=status.HTTP_204_NO_CONTENT)
