"""API v1 views: parse and check input, call a service or selector, serialize. Nothing else.

Who may do what is decided by the services (and, for reads, by the API selectors); the
error handler (errors.py) turns their exceptions into one JSON shape.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.serialization import Encoding
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from enrollment import selectors as enrollment_selectors
from enrollment.revocation.services import certificate_revoke, crl_current
from enrollment.services.employees import employee_create, employee_offboard, employee_update
from enrollment.services.issuance import certificate_pkcs12_export
from enrollment.services.requests import certificate_renewal_request, certificate_request_approve, certificate_request_create, certificate_request_reject
from core.exceptions import ConfigurationError, NotAllowed, NotFound
from enrollment.models import Employee, KeyBackendName

from . import selectors
from core.api.schema import error_responses
from .serializers import (
    CertificateAuthoritySerializer,
    CertificateFilterSerializer,
    CertificateListSerializer,
    CertificateRequestCreateSerializer,
    CertificateRequestSerializer,
    CertificateSerializer,
    CrlQuerySerializer,
    EmployeeCreateSerializer,
    EmployeeFilterSerializer,
    EmployeeSerializer,
    EmployeeUpdateSerializer,
    OffboardSerializer,
    Pkcs12Serializer,
    PublicationFilterSerializer,
    PublicationRetrySerializer,
    PublicationSerializer,
    RejectSerializer,
    RequestFilterSerializer,
    RevokeSerializer,
)

MAX_ID = 2**63 - 1


def errors(*codes: int) -> dict:
    """Schema entries for the JSON error shape under the given status codes."""
    return error_responses(*codes)


def _file(data: bytes, content_type: str, filename: str, *, private: bool = False) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    if private:
        response["Cache-Control"] = "no-store"
    return response


def _checked_id(value: int, what: str) -> int:
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"No {what} #{value}.")
    return value


def _filters(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _body(serializer_class, request, **kwargs) -> dict:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _require(user, permission: str, message: str) -> None:
    if not (user.is_active and user.has_perm(permission)):
        raise NotAllowed(message)


class ListView(GenericAPIView):
    """A paginated list: subclasses give the rows; ?page= and ?page_size= are the paginator's."""

    def paginated(self, rows, serializer_class) -> Response:
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(serializer_class(page, many=True).data)


class FileView(APIView):
    """Answers with a file whatever the Accept header says (errors stay JSON)."""

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


ID_PARAMETER = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def _id_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, ID_PARAMETER, OpenApiParameter.PATH, description=description)


SERIAL = OpenApiParameter(
    "serial",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The certificate's serial number in hex (colons allowed).",
    pattern="^[0-9A-Fa-f:]{1,64}$",
)


# --- Requests -------------------------------------------------------------------------------


def _target_employee(user, data: dict) -> Employee:
    """Whom the request is for: the caller, or (approvers) the employee named by id or mail."""
    own = Employee.objects.filter(user=user).first()
    if "employee" not in data and "mail" not in data:
        if own is None:
            raise NotAllowed("Your account has no employee record with a mailbox; ask a PKI administrator.")
        return own
    if own is not None and (data.get("employee") == own.pk or data.get("mail", "").lower() == own.mail):
        return own
    if not (user.is_active and user.has_perm("enrollment.approve_certificaterequest")):
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


class RequestListCreateView(ListView):
    @extend_schema(
        summary="Certificate requests",
        description="Approvers, auditors and PKI administrators see every request; employees their own. "
        "Newest first.",
        parameters=[RequestFilterSerializer],
        responses={200: CertificateRequestSerializer(many=True), **errors(400, 401, 404)},
    )
    def get(self, request):
        rows = selectors.requests_filtered(user=request.user, filters=_filters(RequestFilterSerializer, request))
        return self.paginated(rows, CertificateRequestSerializer)

    @extend_schema(
        summary="Request a certificate",
        description="For yourself; approvers may name another employee by `employee` (id) or `mail`.",
        request=CertificateRequestCreateSerializer,
        responses={201: CertificateRequestSerializer, **errors(400, 401, 403)},
    )
    def post(self, request):
        data = _body(CertificateRequestCreateSerializer, request)
        employee = _target_employee(request.user, data)
        created = certificate_request_create(
            employee=employee,
            submitted_by=request.user,
            key_type=data["key_type"],
            certificate_type=data["certificate_type"],
        )
        return Response(
            CertificateRequestSerializer(selectors.request_visible_to(user=request.user, request_id=created.pk)).data,
            status=status.HTTP_201_CREATED,
        )


class RequestDetailView(APIView):
    @extend_schema(
        summary="A certificate request",
        parameters=[_id_parameter("request_id", "The request's id.")],
        responses={200: CertificateRequestSerializer, **errors(401, 404)},
    )
    def get(self, request, request_id: int):
        _checked_id(request_id, "request")
        return Response(CertificateRequestSerializer(selectors.request_visible_to(user=request.user, request_id=request_id)).data)


class RequestApproveView(APIView):
    @extend_schema(
        summary="Approve a request (issues the certificate)",
        description="Approvers only, never for a request of their own or one they submitted (separation of duties). "
        "The answer shows the issued certificate, or state `failed` with the reason.",
        request=None,
        parameters=[_id_parameter("request_id", "The request's id.")],
        responses={200: CertificateRequestSerializer, **errors(401, 403, 404, 409)},
    )
    def post(self, request, request_id: int):
        _checked_id(request_id, "request")
        selectors.request_visible_to(user=request.user, request_id=request_id)
        certificate_request_approve(request_id=request_id, approver=request.user)
        return Response(CertificateRequestSerializer(selectors.request_visible_to(user=request.user, request_id=request_id)).data)


class RequestRejectView(APIView):
    @extend_schema(
        summary="Reject a request",
        description="Approvers only (separation of duties as for approval); the reason is shown to the employee.",
        request=RejectSerializer,
        parameters=[_id_parameter("request_id", "The request's id.")],
        responses={200: CertificateRequestSerializer, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request, request_id: int):
        _checked_id(request_id, "request")
        selectors.request_visible_to(user=request.user, request_id=request_id)
        data = _body(RejectSerializer, request)
        certificate_request_reject(request_id=request_id, approver=request.user, reason=data["reason"])
        return Response(CertificateRequestSerializer(selectors.request_visible_to(user=request.user, request_id=request_id)).data)


# --- Certificates ---------------------------------------------------------------------------


class CertificateListView(ListView):
    @extend_schema(
        summary="Certificates",
        description="Approvers, auditors and PKI administrators see every certificate; employees their own. "
        "Newest first.",
        parameters=[CertificateFilterSerializer],
        responses={200: CertificateListSerializer(many=True), **errors(400, 401, 404)},
    )
    def get(self, request):
        rows = selectors.certificates_filtered(user=request.user, filters=_filters(CertificateFilterSerializer, request))
        return self.paginated(rows, CertificateListSerializer)


class CertificateDetailView(APIView):
    @extend_schema(
        summary="A certificate, with its PEM",
        parameters=[SERIAL],
        responses={200: CertificateSerializer, **errors(401, 404)},
    )
    def get(self, request, serial: str):
        certificate = enrollment_selectors.certificate_visible_to(user=request.user, serial=selectors.checked_serial(serial))
        return Response(CertificateSerializer(certificate).data)


class CertificatePemView(FileView):
    @extend_schema(
        summary="Download the certificate (PEM)",
        parameters=[SERIAL],
        responses={
            (200, "application/x-pem-file"): OpenApiResponse(OpenApiTypes.STR, description="The certificate, PEM."),
            **errors(401, 404),
        },
    )
    def get(self, request, serial: str):
        certificate = enrollment_selectors.certificate_visible_to(user=request.user, serial=selectors.checked_serial(serial))
        return _file(certificate.x509.public_bytes(Encoding.PEM), "application/x-pem-file", f"{certificate.mailbox}.pem")


class CertificateDerView(FileView):
    @extend_schema(
        summary="Download the certificate (DER)",
        parameters=[SERIAL],
        responses={
            (200, "application/pkix-cert"): OpenApiResponse(OpenApiTypes.BINARY, description="The certificate, DER."),
            **errors(401, 404),
        },
    )
    def get(self, request, serial: str):
        certificate = enrollment_selectors.certificate_visible_to(user=request.user, serial=selectors.checked_serial(serial))
        return _file(certificate.x509.public_bytes(Encoding.DER), "application/pkix-cert", f"{certificate.mailbox}.cer")


class CertificatePkcs12View(FileView):
    @extend_schema(
        summary="Download key and certificate (PKCS#12)",
        description="The owner only, while the pickup window is open; protected with the passphrase given.",
        request=Pkcs12Serializer,
        parameters=[SERIAL],
        responses={
            (200, "application/x-pkcs12"): OpenApiResponse(OpenApiTypes.BINARY, description="The PKCS#12 file."),
            **errors(400, 401, 404, 409, 410),
        },
    )
    def post(self, request, serial: str):
        # Someone else's certificate is a 404 before any validation can hint that it exists.
        enrollment_selectors.certificate_of_owner(user=request.user, serial=selectors.checked_serial(serial))
        data = _body(Pkcs12Serializer, request)
        certificate, bundle = certificate_pkcs12_export(
            user=request.user, serial=serial, passphrase=data["passphrase"], fmt=data["format"]
        )
        return _file(bundle, "application/x-pkcs12", f"{certificate.mailbox}.p12", private=True)


class CertificateRevokeView(APIView):
    @extend_schema(
        summary="Revoke a certificate",
        description="Approvers and PKI administrators: any certificate, any reason. The owner: their own, "
        "for key_compromise or superseded. The CRL is regenerated and the certificate leaves the directory.",
        request=RevokeSerializer,
        parameters=[SERIAL],
        responses={200: CertificateSerializer, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request, serial: str):
        selectors.checked_serial(serial)
        enrollment_selectors.certificate_visible_to(user=request.user, serial=serial)
        data = _body(RevokeSerializer, request)
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
        responses={201: CertificateRequestSerializer, **errors(400, 401, 404, 409)},
    )
    def post(self, request, serial: str):
        created = certificate_renewal_request(serial=selectors.checked_serial(serial), user=request.user)
        return Response(
            CertificateRequestSerializer(selectors.request_visible_to(user=request.user, request_id=created.pk)).data,
            status=status.HTTP_201_CREATED,
        )


# --- CAs (public, as at /pki/) --------------------------------------------------------------

SLUG = OpenApiParameter("slug", OpenApiTypes.STR, OpenApiParameter.PATH, description="The CA's slug.", pattern="^[-a-zA-Z0-9_]+$")


class CaListView(ListView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        summary="The portal's CAs",
        description="Public, like /pki/<slug>.crt: every CA with its certificate (PEM). The issuing CA signs "
        "employees' certificates; its parents up to the root follow via `parent`.",
        responses={200: CertificateAuthoritySerializer(many=True), **errors(404)},
        auth=[],
    )
    def get(self, request):
        return self.paginated(selectors.certificate_authorities(), CertificateAuthoritySerializer)


class CaDetailView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(summary="A CA", parameters=[SLUG], responses={200: CertificateAuthoritySerializer, **errors(404)}, auth=[])
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
            **errors(404),
        },
        auth=[],
    )
    def get(self, request, slug: str):
        ca = selectors.certificate_authority(slug=slug)
        pem = b"".join(item.certificate.public_bytes(Encoding.PEM) for item in ca.chain())
        return _file(pem, "application/pem-certificate-chain", f"{ca.slug}-chain.pem")


class CaCrlView(FileView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        summary="A CA's current CRL",
        description="DER (the default, as at /pki/<slug>.crl) or PEM with ?encoding=pem.",
        parameters=[SLUG, CrlQuerySerializer],
        responses={
            (200, "application/pkix-crl"): OpenApiResponse(OpenApiTypes.BINARY, description="The CRL (DER, or PEM)."),
            **errors(400, 404, 503),
        },
        auth=[],
    )
    def get(self, request, slug: str):
        encoding = _filters(CrlQuerySerializer, request)["encoding"]
        ca = selectors.certificate_authority(slug=slug)
        if ca.key_backend == KeyBackendName.NONE:
            raise NotFound(f"The portal does not issue CRLs for {ca.slug!r}: it holds no key for it.")
        crl = crl_current(ca=ca)
        if encoding == "pem":
            from cryptography import x509

            crl = x509.load_der_x509_crl(crl).public_bytes(Encoding.PEM)
        response = _file(crl, "application/pkix-crl", f"{ca.slug}.crl" if encoding == "der" else f"{ca.slug}.crl.pem")
        response["Cache-Control"] = "public, max-age=3600"
        return response


# --- Employees ------------------------------------------------------------------------------

EMPLOYEE_ID = _id_parameter("employee_id", "The employee's id.")


class EmployeeListCreateView(ListView):
    @extend_schema(
        summary="Employees",
        description="Approvers, auditors and PKI administrators. In id order.",
        parameters=[EmployeeFilterSerializer],
        responses={200: EmployeeSerializer(many=True), **errors(400, 401, 403, 404)},
    )
    def get(self, request):
        _require(request.user, "enrollment.view_employee", "Only approvers, auditors and PKI administrators list employees.")
        rows = selectors.employees_filtered(filters=_filters(EmployeeFilterSerializer, request))
        return self.paginated(rows, EmployeeSerializer)

    @extend_schema(
        summary="Create an employee",
        description="PKI administrators. The mailbox must be at a domain this CA certifies.",
        request=EmployeeCreateSerializer,
        responses={201: EmployeeSerializer, **errors(400, 401, 403)},
    )
    def post(self, request):
        _require(request.user, "enrollment.add_employee", "Only PKI administrators create employees.")
        data = _body(EmployeeCreateSerializer, request)
        employee = employee_create(actor=request.user, **data)
        return Response(EmployeeSerializer(employee).data, status=status.HTTP_201_CREATED)


class EmployeeDetailView(APIView):
    @extend_schema(
        summary="An employee",
        parameters=[EMPLOYEE_ID],
        responses={200: EmployeeSerializer, **errors(401, 403, 404)},
    )
    def get(self, request, employee_id: int):
        _require(request.user, "enrollment.view_employee", "Only approvers, auditors and PKI administrators see employees.")
        return Response(EmployeeSerializer(selectors.employee_by_id(employee_id=_checked_id(employee_id, "employee"))).data)

    @extend_schema(
        summary="Change an employee",
        description="PKI administrators. The fields given replace the stored ones.",
        request=EmployeeUpdateSerializer,
        parameters=[EMPLOYEE_ID],
        responses={200: EmployeeSerializer, **errors(400, 401, 403, 404)},
    )
    def patch(self, request, employee_id: int):
        _require(request.user, "enrollment.change_employee", "Only PKI administrators change employees.")
        employee = selectors.employee_by_id(employee_id=_checked_id(employee_id, "employee"))
        data = _body(EmployeeUpdateSerializer, request, partial=True)
        employee = employee_update(employee=employee, actor=request.user, **data)
        return Response(EmployeeSerializer(selectors.employee_by_id(employee_id=employee.pk)).data)


class EmployeeOffboardView(APIView):
    @extend_schema(
        summary="Offboard an employee (a leaver)",
        description="Approvers and PKI administrators: revokes the person's valid certificates (cessation of "
        "operation), withdraws pending requests and deactivates the account. Escrowed keys stay for recovery.",
        request=None,
        parameters=[EMPLOYEE_ID],
        responses={200: OffboardSerializer, **errors(401, 403, 404)},
    )
    def post(self, request, employee_id: int):
        _require(request.user, "enrollment.revoke_certificate", "Only approvers and PKI administrators offboard employees.")
        employee = selectors.employee_by_id(employee_id=_checked_id(employee_id, "employee"))
        revoked = employee_offboard(user=employee.user, actor=request.user)
        employee = selectors.employee_by_id(employee_id=employee.pk)
        return Response(OffboardSerializer({"employee": employee, "revoked": [c.serial for c in revoked]}).data)


# --- Directory publications -----------------------------------------------------------------

PUBLICATION_ID = _id_parameter("publication_id", "The publication's id.")


class PublicationListView(ListView):
    @extend_schema(
        summary="Directory publications",
        description="Auditors and PKI administrators: whether each certificate is in its owner's directory entry. "
        "Newest first.",
        parameters=[PublicationFilterSerializer],
        responses={200: PublicationSerializer(many=True), **errors(400, 401, 403, 404)},
    )
    def get(self, request):
        _require(request.user, "enrollment.view_directorypublication", "You may not see directory publications.")
        rows = selectors.publications_filtered(filters=_filters(PublicationFilterSerializer, request))
        return self.paginated(rows, PublicationSerializer)


class PublicationDetailView(APIView):
    @extend_schema(
        summary="A directory publication",
        parameters=[PUBLICATION_ID],
        responses={200: PublicationSerializer, **errors(401, 403, 404)},
    )
    def get(self, request, publication_id: int):
        _require(request.user, "enrollment.view_directorypublication", "You may not see directory publications.")
        publication = selectors.publication_by_id(publication_id=_checked_id(publication_id, "publication"))
        return Response(PublicationSerializer(publication).data)


class PublicationRetryView(APIView):
    @extend_schema(
        summary="Retry a directory publication now",
        description="PKI administrators (perm enrollment.retry_directorypublication). Publishes or removes the "
        "certificate as the row asks and records the outcome; a failed attempt is an answer too (ok: false).",
        request=None,
        parameters=[PUBLICATION_ID],
        responses={200: PublicationRetrySerializer, **errors(401, 403, 404, 503)},
    )
    def post(self, request, publication_id: int):
        from enrollment.directory.services import directory_config, publication_attempt

        _require(request.user, "enrollment.retry_directorypublication", "You may not retry directory publications.")
        publication = selectors.publication_by_id(publication_id=_checked_id(publication_id, "publication"))
        if directory_config() is None:
            raise ConfigurationError("No directory is configured (PORTAL_LDAP_URI is empty).")
        result = publication_attempt(publication=publication, actor=request.user)
        return Response(
            PublicationRetrySerializer(
                {
                    "operation": result.operation,
                    "ok": result.ok,
                    "error": result.error,
                    "publication": selectors.publication_by_id(publication_id=publication.pk),
                }
            ).data
        )
