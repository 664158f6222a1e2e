"""API v1: employees (list, create, one, change, offboard), for the roles that hold the permissions."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.permissions import HasPerm, default_permission_classes
from core.api.schema import error_responses
from core.api.views import ListView, checked_id, id_parameter, validated_body
from enrollment.services.employees import (
    employee_create,
    employee_offboard,
    employee_update,
    offboarding_request_create,
)

from . import selectors
from .filters import EmployeeFilter
from .serializers import (
    EmployeeCreateSerializer,
    EmployeeSerializer,
    EmployeeUpdateSerializer,
    OffboardingRequestInputSerializer,
    OffboardingRequestSerializer,
    OffboardInputSerializer,
    OffboardSerializer,
)

EMPLOYEE_ID = id_parameter("employee_id", "The employee's id.")


class EmployeeListCreateView(ListView):
    permission_classes = [
        *default_permission_classes(),
        HasPerm(
            "enrollment.view_employee",
            "Only approvers, auditors and PKI administrators list employees.",
            methods=["GET"],
        ),
        HasPerm("enrollment.add_employee", "Only PKI administrators create employees.", methods=["POST"]),
    ]
    serializer_class = EmployeeSerializer
    filterset_class = EmployeeFilter

    def get_queryset(self):
        return selectors.employees()

    @extend_schema(
        summary="Employees",
        description="Approvers, auditors and PKI administrators. In id order.",
        responses={200: EmployeeSerializer(many=True), **error_responses(400, 401, 403, 404)},
    )
    def get(self, request):
        return self.list(request)

    @extend_schema(
        summary="Create an employee",
        description="PKI administrators. The mailbox must be at a domain this CA certifies.",
        request=EmployeeCreateSerializer,
        responses={201: EmployeeSerializer, **error_responses(400, 401, 403)},
    )
    def post(self, request):
        data = validated_body(EmployeeCreateSerializer, request)
        employee = employee_create(actor=request.user, **data)
        return Response(EmployeeSerializer(employee).data, status=status.HTTP_201_CREATED)


class EmployeeDetailView(APIView):
    permission_classes = [
        *default_permission_classes(),
        HasPerm(
            "enrollment.view_employee",
            "Only approvers, auditors and PKI administrators see employees.",
            methods=["GET"],
        ),
        HasPerm("enrollment.change_employee", "Only PKI administrators change employees.", methods=["PATCH"]),
    ]

    @extend_schema(
        summary="An employee",
        parameters=[EMPLOYEE_ID],
        responses={200: EmployeeSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request, employee_id: int):
        return Response(EmployeeSerializer(selectors.employee_by_id(employee_id=checked_id(employee_id, "employee"))).data)

    @extend_schema(
        summary="Change an employee",
        description="PKI administrators. The fields given replace the stored ones, in one audited step, when no "
        "valid certificate binds them. A mailbox or directory DN while the employee holds valid certificates, and "
        "names while sponsor-validated ones are valid, need a second person: 400 naming the certificates; ask "
        "for an identity change request (admin: \"Request identity change\"), which another PKI administrator "
        "or an approver confirms, revoking the old certificates.",
        request=EmployeeUpdateSerializer,
        parameters=[EMPLOYEE_ID],
        responses={200: EmployeeSerializer, **error_responses(400, 401, 403, 404)},
    )
    def patch(self, request, employee_id: int):
        employee = selectors.employee_by_id(employee_id=checked_id(employee_id, "employee"))
        data = validated_body(EmployeeUpdateSerializer, request, partial=True)
        employee = employee_update(employee=employee, actor=request.user, **data)
        return Response(EmployeeSerializer(selectors.employee_by_id(employee_id=employee.pk)).data)


class EmployeeOffboardView(APIView):
    permission_classes = [
        *default_permission_classes(),
        HasPerm(
            "enrollment.revoke_certificate",
            "Only approvers and PKI administrators offboard employees.",
            methods=["POST"],
        ),
    ]

    @extend_schema(
        summary="Offboard an employee (a leaver)",
        description="Approvers and PKI administrators: revokes the person's valid certificates (cessation of "
        "operation), withdraws pending requests and deactivates the account. Escrowed keys stay for recovery. "
        "An account with a trusted role needs two PKI administrators: one requests it "
        "(`offboarding-request/`), another calls this. Offboarding one of the last approvers key recovery "
        "needs `acknowledge_consequences` (409 otherwise).",
        request=OffboardInputSerializer,
        parameters=[EMPLOYEE_ID],
        responses={200: OffboardSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request, employee_id: int):
        employee = selectors.employee_by_id(employee_id=checked_id(employee_id, "employee"))
        data = validated_body(OffboardInputSerializer, request)
        revoked = employee_offboard(
            user=employee.user, actor=request.user, acknowledge_consequences=data["acknowledge_consequences"]
        )
        employee = selectors.employee_by_id(employee_id=employee.pk)
        return Response(OffboardSerializer({"employee": employee, "revoked": [c.serial for c in revoked]}).data)


class EmployeeOffboardingRequestView(APIView):
    permission_classes = [
        *default_permission_classes(),
        HasPerm(
            "enrollment.revoke_certificate",
            "Only PKI administrators request the offboarding of accounts with a trusted role.",
            methods=["POST"],
        ),
    ]

    @extend_schema(
        summary="Request the offboarding of an account with a trusted role",
        description="PKI administrators (superusers for a superuser): the first of the two people that offboarding "
        "an approver, auditor, PKI administrator, agent or admin user needs; a second PKI administrator then "
        "calls `offboard/`.",
        request=OffboardingRequestInputSerializer,
        parameters=[EMPLOYEE_ID],
        responses={201: OffboardingRequestSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request, employee_id: int):
        employee = selectors.employee_by_id(employee_id=checked_id(employee_id, "employee"))
        data = validated_body(OffboardingRequestInputSerializer, request)
        created = offboarding_request_create(user=employee.user, actor=request.user, reason=data["reason"])
        return Response(OffboardingRequestSerializer(created).data, status=201)
