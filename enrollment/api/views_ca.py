"""API v1: the portal's CAs, public as at /pki/ (no credentials are looked at): list, one, chain, CRL."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import error_responses
from core.api.views import FileView, ListView, validated_query
from core.downloads import attachment
from core.exceptions import NotFound
from enrollment.models import KeyBackendName
from enrollment.revocation.services import crl_current

from . import selectors
from .serializers import CertificateAuthoritySerializer, CrlQuerySerializer

SLUG = OpenApiParameter("slug", OpenApiTypes.STR, OpenApiParameter.PATH, description="The CA's slug.", pattern="^[-a-zA-Z0-9_]+$")


class CaListView(ListView):
    permission_classes = [AllowAny]
    authentication_classes = []
    serializer_class = CertificateAuthoritySerializer

    def get_queryset(self):
        return selectors.certificate_authorities()

    @extend_schema(
        summary="The portal's CAs",
        description="Public, like /pki/<slug>.crt: every CA with its certificate (PEM). The issuing CA signs "
        "employees' certificates; its parents up to the root follow via `parent`.",
        responses={200: CertificateAuthoritySerializer(many=True), **error_responses(404)},
        auth=[],
    )
    def get(self, request):
        return self.list(request)


class CaDetailView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        summary="A CA", parameters=[SLUG], responses={200: CertificateAuthoritySerializer, **error_responses(404)}, auth=[]
    )
    def get(self, request, slug: str):
        return Response(CertificateAuthoritySerializer(selectors.certificate_authority(slug=slug)).data)


class CaChainView(FileView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        summary="A CA's chain (PEM)",
        description="The CA's certificate followed by its parents up to the root.",
        parameters=[SLUG],
        responses={
            (200, "application/pem-certificate-chain"): OpenApiResponse(OpenApiTypes.STR, description="PEM certificates."),
            **error_responses(404),
        },
        auth=[],
    )
    def get(self, request, slug: str):
        ca = selectors.certificate_authority(slug=slug)
        pem = b"".join(item.certificate.public_bytes(Encoding.PEM) for item in ca.chain())
        return attachment(pem, "application/pem-certificate-chain", f"{ca.slug}-chain.pem")


class CaCrlView(FileView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        summary="A CA's current CRL",
        description="DER (the default, as at /pki/<slug>.crl) or PEM with ?encoding=pem.",
        parameters=[SLUG, CrlQuerySerializer],
        responses={
            (200, "application/pkix-crl"): OpenApiResponse(OpenApiTypes.BINARY, description="The CRL (DER, or PEM)."),
            **error_responses(400, 404, 503),
        },
        auth=[],
    )
    def get(self, request, slug: str):
        encoding = validated_query(CrlQuerySerializer, request)["encoding"]
        ca = selectors.certificate_authority(slug=slug)
        if ca.key_backend == KeyBackendName.NONE:
            raise NotFound(f"The portal does not issue CRLs for {ca.slug!r}: it holds no key for it.")
        crl = crl_current(ca=ca)
        if encoding == "pem":
            crl = x509.load_der_x509_crl(crl).public_bytes(Encoding.PEM)
        response = attachment(crl, "application/pkix-crl", f"{ca.slug}.crl" if encoding == "der" else f"{ca.slug}.crl.pem")
        response["Cache-Control"] = "public, max-age=3600"
        return response
