"""Key recovery API: request, approve/reject, complete (agent upload), download (recipient)."""

from django.http import HttpResponse
from django.views.decorators.debug import sensitive_post_parameters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from core.exceptions import NotFound
from core.api.schema import error_responses
from escrow.selectors import recoveries_visible_to, recovery_visible_to
from escrow.services.pickups import recovery_pkcs12_export
from escrow.services.recovery import recovery_request_approve, recovery_request_complete, recovery_request_create, recovery_request_reject
from escrow.models import RecoveryRequest

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
        return recoveries_visible_to(user=self.request.user).prefetch_related("decisions__approver", "pickups__certificate")

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
        serializer = RecoveryCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
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


recovery_list_create = RecoveryListCreate.as_view()


@extend_schema(tags=TAGS, operation_id="recoveries_retrieve", responses={200: RecoveryRequestSerializer, **error_responses(401, 404)})
@api_view(["GET"])
def recovery_detail(request, request_id: int):
    return _read(request, request_id)


@extend_schema(
    tags=TAGS,
    operation_id="recoveries_approve",
    request=RecoveryDecisionInputSerializer,
    responses={200: RecoveryRequestSerializer, **error_responses(400, 401, 403, 404, 409)},
)
@api_view(["POST"])
def recovery_approve(request, request_id: int):
    # Someone who may not see the request gets a 404 before anything else.
    recovery_visible_to(user=request.user, request_id=request_id)
    serializer = RecoveryDecisionInputSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    recovery_request_approve(
        request_id=request_id, approver=request.user, comment=serializer.validated_data.get("comment", "")
    )
    return _read(request, request_id)


@extend_schema(
    tags=TAGS,
    operation_id="recoveries_reject",
    request=RecoveryRejectSerializer,
    responses={200: RecoveryRequestSerializer, **error_responses(400, 401, 403, 404, 409)},
)
@api_view(["POST"])
def recovery_reject(request, request_id: int):
    recovery_visible_to(user=request.user, request_id=request_id)
    serializer = RecoveryRejectSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    recovery_request_reject(
        request_id=request_id, approver=request.user, comment=serializer.validated_data["comment"]
    )
    return _read(request, request_id)


@extend_schema(
    tags=TAGS,
    operation_id="recoveries_complete",
    request={"multipart/form-data": RecoveryCompleteSerializer},
    responses={200: RecoveryRequestSerializer, **error_responses(400, 401, 403, 404, 409)},
)
@sensitive_post_parameters("passphrase")
@api_view(["POST"])
@parser_classes([MultiPartParser, FormParser])
def recovery_complete(request, request_id: int):
    recovery_visible_to(user=request.user, request_id=request_id)
    serializer = RecoveryCompleteSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    recovery_request_complete(
        request_id=request_id,
        agent=request.user,
        agent_pkcs12=serializer.validated_data["agent_pkcs12"].read(),
        passphrase=serializer.validated_data["passphrase"],
    )
    return _read(request, request_id)


@extend_schema(
    tags=TAGS,
    operation_id="recoveries_pkcs12",
    request=RecoveryPkcs12Serializer,
    responses={
        (200, "application/x-pkcs12"): OpenApiResponse(OpenApiTypes.BINARY, description="the recovered key as PKCS#12"),
        **error_responses(400, 401, 404, 409, 410),
    },
)
@api_view(["POST"])
@parser_classes([JSONParser, FormParser, MultiPartParser])
def recovery_pkcs12(request, request_id: int):
    # For the recipient only: anyone else gets the same 404 whether or not the request exists.
    recovery_visible_to(user=request.user, request_id=request_id)
    if not RecoveryRequest.objects.filter(pk=request_id, recipient=request.user).exists():
        raise NotFound(f"There is no recovered key for you under request #{request_id}.")
    serializer = RecoveryPkcs12Serializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    filename, bundle = recovery_pkcs12_export(
        user=request.user,
        request_id=request_id,
        passphrase=serializer.validated_data["passphrase"],
        fmt=serializer.validated_data["format"],
        serial=serializer.validated_data.get("certificate", ""),
    )
    response = HttpResponse(bundle, content_type="application/x-pkcs12")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
