from django.http import HttpResponse
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.response import Response

from enrollment import selectors, services
from enrollment.exceptions import NotAllowed, NotFound
from enrollment.models import CertificateRequest, Employee

from .serializers import (
    CertificateRequestCreateSerializer,
    CertificateRequestSerializer,
    CertificateSerializer,
    Pkcs12Serializer,
    RejectSerializer,
)


def _request_for(request_id: int) -> CertificateRequest:
    return CertificateRequest.objects.select_related("employee__user", "submitted_by", "decided_by").get(pk=request_id)


@api_view(["POST"])
def request_create(request):
    serializer = CertificateRequestCreateSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    employee = Employee.objects.filter(user=request.user).first()
    if employee is None:
        raise NotAllowed("Your account has no employee record with a mailbox.")
    created = services.certificate_request_create(
        employee=employee, submitted_by=request.user, **serializer.validated_data
    )
    return Response(CertificateRequestSerializer(_request_for(created.pk)).data, status=status.HTTP_201_CREATED)


def _decidable(request, request_id: int):
    """Existence of others' requests is no secret to approvers, but is to everyone else."""
    if not request.user.has_perm("enrollment.approve_certificaterequest"):
        visible = CertificateRequest.objects.filter(pk=request_id, employee__user=request.user).exists()
        if not visible:
            raise NotFound(f"No request #{request_id}.")
    elif not CertificateRequest.objects.filter(pk=request_id).exists():
        raise NotFound(f"No request #{request_id}.")


@api_view(["POST"])
def request_approve(request, request_id: int):
    _decidable(request, request_id)
    services.certificate_request_approve(request_id=request_id, approver=request.user)
    return Response(CertificateRequestSerializer(_request_for(request_id)).data)


@api_view(["POST"])
def request_reject(request, request_id: int):
    _decidable(request, request_id)
    serializer = RejectSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    services.certificate_request_reject(
        request_id=request_id, approver=request.user, reason=serializer.validated_data["reason"]
    )
    return Response(CertificateRequestSerializer(_request_for(request_id)).data)


@api_view(["GET"])
def certificate_detail(request, serial: str):
    certificate = selectors.certificate_visible_to(user=request.user, serial=serial)
    return Response(CertificateSerializer(certificate).data)


@api_view(["POST"])
def certificate_pkcs12(request, serial: str):
    serializer = Pkcs12Serializer(data=request.data)
    # Someone else's certificate is a 404 before any validation can hint that it exists.
    selectors.certificate_of_owner(user=request.user, serial=serial)
    serializer.is_valid(raise_exception=True)
    certificate, bundle = services.certificate_pkcs12_export(
        user=request.user,
        serial=serial,
        passphrase=serializer.validated_data["passphrase"],
        fmt=serializer.validated_data["format"],
    )
    response = HttpResponse(bundle, content_type="application/x-pkcs12")
    response["Content-Disposition"] = f'attachment; filename="{certificate.mailbox}.p12"'
    response["Cache-Control"] = "no-store"
    return response
