"""Reads of enrollment data: the issuing CA, certificates by serial, what a user may see."""

from __future__ import annotations

from django.db.models import QuerySet

from core.exceptions import ConfigurationError, NotFound

from .models import Certificate, CertificateAuthority, CertificateRequest
from .pki.serials import normalize_serial


def issuing_ca() -> CertificateAuthority:
    ca = CertificateAuthority.objects.select_related("parent").filter(is_issuing=True).first()
    if ca is None:
        raise ConfigurationError("No issuing CA is configured. Run `python manage.py init_ca` first.")
    return ca


def requests_of_user(*, user) -> QuerySet[CertificateRequest]:
    return CertificateRequest.objects.filter(employee__user=user).prefetch_related("certificates")


def certificates_of_user(*, user) -> QuerySet[Certificate]:
    return Certificate.objects.filter(employee__user=user).select_related("issuer", "pickup")


def certificate_by_serial(*, serial: str) -> Certificate:
    normalized = normalize_serial(serial)
    certificate = (
        Certificate.objects.select_related("employee__user", "issuer__parent").filter(serial=normalized).first()
    )
    if certificate is None:
        raise NotFound(f"No certificate with serial {serial}.")
    return certificate


def certificate_visible_to(*, user, serial: str) -> Certificate:
    """A certificate its owner, approvers and auditors may read; 404 for anyone else."""
    certificate = certificate_by_serial(serial=serial)
    if certificate.employee.user_id == user.pk or user.has_perm("enrollment.view_certificate"):
        return certificate
    raise NotFound(f"No certificate with serial {serial}.")


def certificate_of_owner(*, user, serial: str) -> Certificate:
    """A certificate of `user` only; someone else's looks like none at all."""
    certificate = certificate_by_serial(serial=serial)
    if certificate.employee.user_id != user.pk:
        raise NotFound(f"No certificate with serial {serial}.")
    return certificate
