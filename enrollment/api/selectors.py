"""Reads for the API: who sees which rows, filtered as the query asks, in a stable order.

Visibility follows the admin: holders of a model's view permission (approvers, auditors,
PKI administrators) see every row; an employee sees their own; anyone else's row looks
like none at all (404, not 403).
"""

from __future__ import annotations

import re

from django.db.models import QuerySet

from core.exceptions import NotFound
from enrollment.models import Certificate, CertificateAuthority, CertificateRequest, DirectoryPublication, Employee

_SERIAL = re.compile(r"^[0-9A-Fa-f:]{1,64}$")


def _can(user, permission: str) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.has_perm(permission))


def checked_serial(serial: str) -> str:
    """A serial in hex (colons allowed); anything else names no certificate."""
    if not _SERIAL.match(serial or ""):
        raise NotFound(f"No certificate with serial {serial[:80]!r}.")
    return serial


# --- Requests -------------------------------------------------------------------------------


def requests_visible_to(*, user) -> QuerySet[CertificateRequest]:
    rows = CertificateRequest.objects.select_related("employee__user", "submitted_by", "decided_by").prefetch_related(
        "certificates"
    )
    if not _can(user, "enrollment.view_certificaterequest"):
        rows = rows.filter(employee__user=user)
    return rows.order_by("-created_at", "-id")


def requests_filtered(*, user, filters: dict) -> QuerySet[CertificateRequest]:
    rows = requests_visible_to(user=user)
    if "state" in filters:
        rows = rows.filter(state=filters["state"])
    if "key_type" in filters:
        rows = rows.filter(key_type=filters["key_type"])
    if "certificate_type" in filters:
        rows = rows.filter(certificate_type=filters["certificate_type"])
    if "mailbox" in filters:
        rows = rows.filter(employee__mail__iexact=filters["mailbox"])
    if "created_after" in filters:
        rows = rows.filter(created_at__gte=filters["created_after"])
    if "created_before" in filters:
        rows = rows.filter(created_at__lt=filters["created_before"])
    return rows


def request_visible_to(*, user, request_id: int) -> CertificateRequest:
    request = requests_visible_to(user=user).filter(pk=request_id).first()
    if request is None:
        raise NotFound(f"No request #{request_id}.")
    return request


# --- Certificates ---------------------------------------------------------------------------


def certificates_visible_to(*, user) -> QuerySet[Certificate]:
    rows = Certificate.objects.select_related("issuer", "employee__user")
    if not _can(user, "enrollment.view_certificate"):
        rows = rows.filter(employee__user=user)
    return rows.order_by("-created_at", "-id")


def certificates_filtered(*, user, filters: dict) -> QuerySet[Certificate]:
    rows = certificates_visible_to(user=user)
    if "status" in filters:
        rows = rows.filter(status=filters["status"])
    if "mailbox" in filters:
        rows = rows.filter(mailbox__iexact=filters["mailbox"])
    if "expiring_before" in filters:
        rows = rows.filter(not_after__lt=filters["expiring_before"])
    if "key_type" in filters:
        rows = rows.filter(key_type=filters["key_type"])
    if "certificate_type" in filters:
        rows = rows.filter(certificate_type=filters["certificate_type"])
    return rows


# --- CAs, employees, publications -----------------------------------------------------------


def certificate_authorities() -> QuerySet[CertificateAuthority]:
    return CertificateAuthority.objects.select_related("parent").order_by("id")


def certificate_authority(*, slug: str) -> CertificateAuthority:
    ca = certificate_authorities().filter(slug=slug).first()
    if ca is None:
        raise NotFound(f"No CA {slug!r}.")
    return ca


def employees_filtered(*, filters: dict) -> QuerySet[Employee]:
    rows = Employee.objects.select_related("user").order_by("id")
    if "mail" in filters:
        rows = rows.filter(mail__iexact=filters["mail"])
    if "department" in filters:
        rows = rows.filter(department=filters["department"])
    return rows


def employee_by_id(*, employee_id: int) -> Employee:
    employee = Employee.objects.select_related("user").filter(pk=employee_id).first()
    if employee is None:
        raise NotFound(f"No employee #{employee_id}.")
    return employee


def publications_filtered(*, filters: dict) -> QuerySet[DirectoryPublication]:
    rows = DirectoryPublication.objects.select_related("certificate").order_by("-id")
    if "state" in filters:
        rows = rows.filter(state=filters["state"])
    if "mailbox" in filters:
        rows = rows.filter(certificate__mailbox__iexact=filters["mailbox"])
    return rows


def publication_by_id(*, publication_id: int) -> DirectoryPublication:
    publication = DirectoryPublication.objects.select_related("certificate").filter(pk=publication_id).first()
    if publication is None:
        raise NotFound(f"No directory publication #{publication_id}.")
    return publication
