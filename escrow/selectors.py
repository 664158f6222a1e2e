"""Reads of the escrow app: recovery requests as each role sees them, escrowed keys, open pickups."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from core.exceptions import NotFound
from enrollment.models import Certificate, Employee

from .models import RecoveryDecision, RecoveryPickup, RecoveryRequest


def recoveries_visible_to(*, user) -> QuerySet[RecoveryRequest]:
    """All requests for approvers, agents, auditors and PKI administrators; otherwise those
    the user made, receives or whose keys are theirs."""
    queryset = RecoveryRequest.objects.select_related(
        "certificate", "employee__user", "requested_by", "recipient", "completed_by"
    ).annotate(
        approvals=Count("decisions", filter=Q(decisions__decision=RecoveryDecision.Decision.APPROVE), distinct=True)
    ).order_by("-created_at", "-id")  # Meta.ordering does not apply to aggregating queries
    if user.has_perm("escrow.view_recoveryrequest"):
        return queryset
    return queryset.filter(Q(requested_by=user) | Q(recipient=user) | Q(employee__user=user))


def recovery_visible_to(*, user, request_id: int) -> RecoveryRequest:
    request = recoveries_visible_to(user=user).filter(pk=request_id).first()
    if request is None:
        raise NotFound(f"There is no recovery request #{request_id}.")
    return request


def recovery_of_recipient(*, user, request_id: int) -> RecoveryRequest:
    """The request, for its recipient only: anyone else gets a 404, whether or not it exists."""
    request = recovery_visible_to(user=user, request_id=request_id)
    if request.recipient_id != user.pk:
        raise NotFound(f"There is no recovered key for you under request #{request_id}.")
    return request


def recovery_certificates(request: RecoveryRequest) -> list[Certificate]:
    """The certificates whose escrowed keys the request covers, oldest first."""
    if request.certificate_id:
        return [request.certificate]
    return list(escrowed_certificates(request.employee))


def escrowed_certificates(employee: Employee) -> QuerySet[Certificate]:
    return (
        Certificate.objects.filter(employee=employee, escrow__isnull=False)
        .select_related("escrow", "issuer", "employee__user")
        .order_by("not_before", "pk")
    )


def open_pickups_of(*, user) -> QuerySet[RecoveryPickup]:
    return RecoveryPickup.objects.filter(recipient=user).open().order_by("request_id", "certificate__not_before")
