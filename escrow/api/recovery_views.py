"""Key recovery API: request, approve/reject, complete (agent upload), download (recipient)."""

from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.parsers import BoundedJSONParser
from core.api.schema import error_responses
from core.api.views import validated_body
from core.downloads import attachment
from escrow.selectors import recoveries_visible_to, recovery_of_recipient, recovery_visible_to
from escrow.services.pickups import recovery_pkcs12_export
from escrow.services.recovery import (
    recovery_request_approve,
    recovery_request_complete,
    recovery_request_create,
    recovery_request_reject,
)

from .recovery_serializers import (
    RecoveryCompleteSerializer,
    RecoveryCreateSerializer,
    RecoveryDecisionInputSerializer,
    RecoveryPkcs12Serializer,
    RecoveryRejectSerializer,
    RecoveryRequestSerializer,
)

TAGS = ["recoveries"]


def _read(request, request_id: int) -> Response:
    found = recovery_visible_to(user=request.user, request_id=request_id)
    return Response(RecoveryRequestSerializer(found).data)


class RecoveryListCreate(generics.ListCreateAPIView):
    """GET: the recovery requests you may see (all for approvers, agents, auditors and PKI
    administrators; else those you made, receive or whose keys are yours). POST: request one."""

    serializer_class = RecoveryRequestSerializer

    def get_queryset(self):
        return recoveries_visible_to(user=self.request.user).prefetch_related(
            "decisions__approver", "pickups__certificate"
        )

    @extend_schema(
        tags=TAGS,
        operation_id="recoveries_list",
        responses={200: RecoveryRequestSerializer(many=True), **error_responses(401, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAGS,
        operation_id="recoveries_create",
        request=RecoveryCreateSerializer,
        responses={201: RecoveryRequestSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request, *args, **kwargs):
        data = validated_body(RecoveryCreateSerializer, request)
        created = recovery_request_create(
            requested_by=request.user,
            reason=data["reason"],
            serial=data.get("certificate", ""),
            employee_username=data.get("employee", ""),
            recipient_username=data.get("recipient", ""),
            purpose=data.get("purpose", ""),
        )
        found = recovery_visible_to(user=request.user, request_id=created.pk)
        return Response(RecoveryRequestSerializer(found).data, status=status.HTTP_201_CREATED)


class RecoveryDetail(APIView):
    @extend_schema(
        tags=TAGS,
        operation_id="recoveries_retrieve",
        responses={200: RecoveryRequestSerializer, **error_responses(401, 404)},
    )
    def get(self, request, request_id: int):
        return _read(request, request_id)


class RecoveryApprove(APIView):
    @extend_schema(
        tags=TAGS,
        operation_id="recoveries_approve",
        request=RecoveryDecisionInputSerializer,
        responses={200: RecoveryRequestSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request, request_id: int):
        # Someone who may not see the request gets a 404 before anything else.
        recovery_visible_to(user=request.user, request_id=request_id)
        data = validated_body(RecoveryDecisionInputSerializer, request)
        recovery_request_approve(request_id=request_id, approver=request.user, comment=data.get("comment", ""))
        return _read(request, request_id)


class RecoveryReject(APIView):
    @extend_schema(
        tags=TAGS,
        operation_id="recoveries_reject",
        request=RecoveryRejectSerializer,
        responses={200: RecoveryRequestSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request, request_id: int):
        recovery_visible_to(user=request.user, request_id=request_id)
        data = validated_body(RecoveryRejectSerializer, request)
        recovery_request_reject(request_id=request_id, approver=request.user, comment=data["comment"])
        return _read(request, request_id)


@method_decorator(sensitive_post_parameters("passphrase"), name="dispatch")
class RecoveryComplete(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        tags=TAGS,
        operation_id="recoveries_complete",
        request={"multipart/form-data": RecoveryCompleteSerializer},
        responses={200: RecoveryRequestSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request, request_id: int):
        recovery_visible_to(user=request.user, request_id=request_id)
        data = validated_body(RecoveryCompleteSerializer, request)
        recovery_request_complete(
            request_id=request_id,
            agent=request.user,
            agent_pkcs12=data["agent_pkcs12"].read(),
            passphrase=data["passphrase"],
        )
        return _read(request, request_id)


class RecoveryPkcs12(APIView):
    parser_classes = [BoundedJSONParser, FormParser, MultiPartParser]

    @extend_schema(
        tags=TAGS,
        operation_id="recoveries_pkcs12",
        request=RecoveryPkcs12Serializer,
        responses={
            (200, "application/x-pkcs12"): OpenApiResponse(
                OpenApiTypes.BINARY, description="the recovered key as PKCS#12"
            ),
            **error_responses(400, 401, 404, 409, 410),
        },
    )
    def post(self, request, request_id: int):
        # For the recipient only: anyone else gets the same 404 whether or not the request exists.
        recovery_of_recipient(user=request.user, request_id=request_id)
        data = validated_body(RecoveryPkcs12Serializer, request)
        filename, bundle = recovery_pkcs12_export(
            user=request.user,
            request_id=request_id,
            passphrase=data["passphrase"],
            fmt=data["format"],
            serial=data.get("certificate", ""),
        )
        return attachment(bundle, "application/x-pkcs12", filename, private=True)
