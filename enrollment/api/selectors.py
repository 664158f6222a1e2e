"""Reads for the API: who sees which rows, in a stable order (the lists' filters: filters.py).

Visibility follows the admin: holders of a model's view permission (approvers, auditors,
PKI administrators) see every row; an employee sees their own; anyone else's row looks
like none at all (404, not 403).
"""

from __future__ import annotations

import re

from django.db.models import QuerySet

from core.api.permissions import user_has_perm
from core.exceptions import NotFound
from enrollment.models import Certificate, CertificateAuthority, CertificateRequest, DirectoryPublication, Employee

_SERIAL = re.compile(r"^[0-9A-Fa-f:]{1,64}$")


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
    if not user_has_perm(user, "enrollment.view_certificaterequest"):
        rows = rows.filter(employee__user=user)
    return rows.order_by("-created_at", "-id")


def request_visible_to(*, user, request_id: int) -> CertificateRequest:
    request = requests_visible_to(user=user).filter(pk=request_id).first()
    if request is None:
        raise NotFound(f"No request #{request_id}.")
    return request


# --- Certificates ---------------------------------------------------------------------------


def certificates_visible_to(*, user) -> QuerySet[Certificate]:
    rows = Certificate.objects.select_related("issuer", "employee__user")
    if not user_has_perm(user, "enrollment.view_certificate"):
        rows = rows.filter(employee__user=user)
    return rows.order_by("-created_at", "-id")


# --- CAs, employees, publications -----------------------------------------------------------


def certificate_authorities() -> QuerySet[CertificateAuthority]:
    return CertificateAuthority.objects.select_related("parent").order_by("id")


def certificate_authority(*, slug: str) -> CertificateAuthority:
    ca = certificate_authorities().filter(slug=slug).first()
    if ca is None:
        raise NotFound(f"No CA {slug!r}.")
    return ca


def employees() -> QuerySet[Employee]:
    return Employee.objects.select_related("user").order_by("id")


def employee_by_id(*, employee_id: int) -> Employee:
    employee = employees().filter(pk=employee_id).first()
    if employee is None:
        raise NotFound(f"No employee #{employee_id}.")
    return employee


def publications() -> QuerySet[DirectoryPublication]:
    return DirectoryPublication.objects.select_related("certificate").order_by("-id")


def publication_by_id(*, publication_id: int) -> DirectoryPublication:
    publication = publications().filter(pk=publication_id).first()
    if publication is None:
        raise NotFound(f"No directory publication #{publication_id}.")
    return publication
