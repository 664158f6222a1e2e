"""API v1: certificates (list, one, PEM/DER/PKCS#12 downloads, revoke, renew).

Someone else's certificate is a 404 (the selectors); who may revoke which certificate for
which reason, and who may renew, the services decide.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.serialization import Encoding
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import error_responses
from core.api.views import FileView, ListView, validated_body
from core.downloads import attachment
from enrollment import selectors as enrollment_selectors
from enrollment.revocation.services import certificate_revoke
from enrollment.services.issuance import certificate_pkcs12_export
from enrollment.services.requests import certificate_renewal_request

from . import selectors
from .filters import CertificateFilter
from .serializers import (
    CertificateListSerializer,
    CertificateRequestSerializer,
    CertificateSerializer,
    Pkcs12Serializer,
    RevokeSerializer,
)

SERIAL = OpenApiParameter(
    "serial",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The certificate's serial number in hex (colons allowed).",
    pattern="^[0-9A-Fa-f:]{1,64}$",
)


def _visible(request, serial: str):
    return enrollment_selectors.certificate_visible_to(user=request.user, serial=selectors.checked_serial(serial))


class CertificateListView(ListView):
    serializer_class = CertificateListSerializer
    filterset_class = CertificateFilter

    def get_queryset(self):
        return selectors.certificates_visible_to(user=self.request.user)

    @extend_schema(
        summary="Certificates",
        description="Approvers, auditors and PKI administrators see every certificate; employees their own. "
        "Newest first.",
        responses={200: CertificateListSerializer(many=True), **error_responses(400, 401, 404)},
    )
    def get(self, request):
        return self.list(request)


class CertificateDetailView(APIView):
    @extend_schema(
        summary="A certificate, with its PEM",
        parameters=[SERIAL],
        responses={200: CertificateSerializer, **error_responses(401, 404)},
    )
    def get(self, request, serial: str):
        return Response(CertificateSerializer(_visible(request, serial)).data)


class CertificatePemView(FileView):
    @extend_schema(
        summary="Download the certificate (PEM)",
        parameters=[SERIAL],
        responses={
            (200, "application/x-pem-file"): OpenApiResponse(OpenApiTypes.STR, description="The certificate, PEM."),
            **error_responses(401, 404),
        },
    )
    def get(self, request, serial: str):
        certificate = _visible(request, serial)
        pem = certificate.x509.public_bytes(Encoding.PEM)
        return attachment(pem, "application/x-pem-file", f"{certificate.mailbox}.pem")


class CertificateDerView(FileView):
    @extend_schema(
        summary="Download the certificate (DER)",
        parameters=[SERIAL],
        responses={
            (200, "application/pkix-cert"): OpenApiResponse(OpenApiTypes.BINARY, description="The certificate, DER."),
            **error_responses(401, 404),
        },
    )
    def get(self, request, serial: str):
        certificate = _visible(request, serial)
        der = certificate.x509.public_bytes(Encoding.DER)
        return attachment(der, "application/pkix-cert", f"{certificate.mailbox}.cer")


class CertificatePkcs12View(FileView):
    @extend_schema(
        summary="Download key and certificate (PKCS#12)",
        description="The owner only, while the pickup window is open; protected with the passphrase given.",
        request=Pkcs12Serializer,
        parameters=[SERIAL],
        responses={
            (200, "application/x-pkcs12"): OpenApiResponse(OpenApiTypes.BINARY, description="The PKCS#12 file."),
            **error_responses(400, 401, 404, 409, 410),
        },
    )
    def post(self, request, serial: str):
        serial = selectors.checked_serial(serial)
        try:
            data = validated_body(Pkcs12Serializer, request)
        except APIException:  # the body's 400 (or 415)
            # Someone else's certificate is a 404 before any validation can hint that it exists;
            # a valid body leaves that to the service (one read of the certificate, not two).
            enrollment_selectors.certificate_of_owner(user=request.user, serial=serial)
            raise
        certificate, bundle = certificate_pkcs12_export(
            user=request.user, serial=serial, passphrase=data["passphrase"], fmt=data["format"]
        )
        return attachment(bundle, "application/x-pkcs12", f"{certificate.mailbox}.p12", private=True)


class CertificateRevokeView(APIView):
    @extend_schema(
        summary="Revoke a certificate",
        description="Approvers and PKI administrators: any certificate, any reason. The owner: their own, "
        "for key_compromise or superseded. The CRL is regenerated and the certificate leaves the directory.",
        request=RevokeSerializer,
        parameters=[SERIAL],
        responses={200: CertificateSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request, serial: str):
        _visible(request, serial)
        data = validated_body(RevokeSerializer, request)
        certificate = certificate_revoke(
            serial=serial, actor=request.user, reason=data["reason"], comment=data["comment"]
        )
        return Response(CertificateSerializer(certificate).data)


class CertificateRenewView(APIView):
    @extend_schema(
        summary="Renew a certificate",
        description="The owner, within the renewal window before expiry: a new request with the same key type and "
        "certificate type, approved at once when the identity is unchanged (if the portal is configured so).",
        request=None,
        parameters=[SERIAL],
        responses={201: CertificateRequestSerializer, **error_responses(400, 401, 404, 409)},
    )
    def post(self, request, serial: str):
        created = certificate_renewal_request(serial=selectors.checked_serial(serial), user=request.user)
        found = selectors.request_visible_to(user=request.user, request_id=created.pk)
        return Response(CertificateRequestSerializer(found).data, status=status.HTTP_201_CREATED)
