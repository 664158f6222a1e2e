"""API v1: certificate requests (list, create, one, approve, reject).

Who sees a request is the selectors' business (someone else's is a 404); who may approve or
reject it, the services' (403, or 409 for its state).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.permissions import user_has_perm
from core.api.schema import error_responses
from core.api.views import ListView, checked_id, id_parameter, validated_body
from core.exceptions import NotAllowed
from enrollment.models import CertificateRequest, Employee
from enrollment.services.requests import (
    certificate_request_approve,
    certificate_request_create,
    certificate_request_reject,
)

from . import selectors
from .filters import RequestFilter
from .serializers import CertificateRequestCreateSerializer, CertificateRequestSerializer, RejectSerializer

REQUEST_ID = id_parameter("request_id", "The request's id.")


def _target_employee(user, data: dict) -> Employee:
    """Whom the request is for: the caller, or (approvers) the employee named by id or mail.

    Checked here, after the body and before the lookup: a caller who may not name others
    learns nothing about who exists (the service checks the same rule again).
    """
    own = Employee.objects.filter(user=user).first()
    if "employee" not in data and "mail" not in data:
        if own is None:
            raise NotAllowed("Your account has no employee record with a mailbox; ask a PKI administrator.")
        return own
    if own is not None and (data.get("employee") == own.pk or data.get("mail", "").lower() == own.mail):
        return own
    if not user_has_perm(user, "enrollment.approve_certificaterequest"):
        raise NotAllowed("You can only request certificates for yourself; approvers request for others.")
    if "employee" in data:
        employee = Employee.objects.filter(pk=data["employee"]).first()
        if employee is None:
            raise ValidationError({"employee": f"There is no employee #{data['employee']}."})
    else:
        employee = Employee.objects.filter(mail__iexact=data["mail"]).first()
        if employee is None:
            raise ValidationError({"mail": f"No employee has the mailbox {data['mail']}."})
    return employee


def _visible(request, request_id: int, **kwargs) -> Response:
    """The request as the caller sees it now (a 404 if they may not)."""
    found = selectors.request_visible_to(user=request.user, request_id=request_id)
    return Response(CertificateRequestSerializer(found).data, **kwargs)


class RequestListCreateView(ListView):
    serializer_class = CertificateRequestSerializer
    filterset_class = RequestFilter

    def get_queryset(self):
        return selectors.requests_visible_to(user=self.request.user)

    @extend_schema(
        summary="Certificate requests",
        description="Approvers, auditors and PKI administrators see every request; employees their own. "
        "Newest first.",
        responses={200: CertificateRequestSerializer(many=True), **error_responses(400, 401, 404)},
    )
    def get(self, request):
        return self.list(request)

    @extend_schema(
        summary="Request a certificate",
        description="For yourself; approvers may name another employee by `employee` (id) or `mail`.",
        request=CertificateRequestCreateSerializer,
        responses={201: CertificateRequestSerializer, **error_responses(400, 401, 403)},
    )
    def post(self, request):
        data = validated_body(CertificateRequestCreateSerializer, request)
        employee = _target_employee(request.user, data)
        created = certificate_request_create(
            employee=employee,
            submitted_by=request.user,
            key_type=data["key_type"],
            certificate_type=data["certificate_type"],
        )
        return _visible(request, created.pk, status=status.HTTP_201_CREATED)


class RequestDetailView(APIView):
    @extend_schema(
        summary="A certificate request",
        parameters=[REQUEST_ID],
        responses={200: CertificateRequestSerializer, **error_responses(401, 404)},
    )
    def get(self, request, request_id: int):
        return _visible(request, checked_id(request_id, "request"))


class RequestApproveView(APIView):
    @extend_schema(
        summary="Approve a request (issues the certificate)",
        description="Approvers only, never for a request of their own or one they submitted (separation of duties). "
        "Without a task queue the portal issues at once: 200, and the answer shows the issued certificate, or "
        "state `failed` with the reason. With one (PORTAL_BROKER_URL) a worker issues: 202, state `approved` "
        "(issuing); poll the request until it is `issued` or `failed` with the reason.",
        request=None,
        parameters=[REQUEST_ID],
        responses={
            200: OpenApiResponse(CertificateRequestSerializer, description="Issued (or failed, with the reason)."),
            202: OpenApiResponse(
                CertificateRequestSerializer, description="Approved; a worker is issuing (state `approved`)."
            ),
            **error_responses(401, 403, 404, 409),
        },
    )
    def post(self, request, request_id: int):
        selectors.request_visible_to(user=request.user, request_id=checked_id(request_id, "request"))
        decided = certificate_request_approve(request_id=request_id, approver=request.user)
        if decided.state == CertificateRequest.State.APPROVED:
            return _visible(request, request_id, status=status.HTTP_202_ACCEPTED)
        return _visible(request, request_id)


class RequestRejectView(APIView):
    @extend_schema(
        summary="Reject a request",
        description="Approvers only (separation of duties as for approval); the reason is shown to the employee.",
        request=RejectSerializer,
        parameters=[REQUEST_ID],
        responses={200: CertificateRequestSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request, request_id: int):
        selectors.request_visible_to(user=request.user, request_id=checked_id(request_id, "request"))
        data = validated_body(RejectSerializer, request)
        certificate_request_reject(request_id=request_id, approver=request.user, reason=data["reason"])
        return _visible(request, request_id)
