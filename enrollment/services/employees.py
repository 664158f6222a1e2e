"""Employees: the identities certificates bind, created and changed under audit, and leavers."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record
from core.exceptions import NotAllowed, SeparationOfDuties

from ..models import Certificate, CertificateRequest, Employee
from ..revocation.services import certificate_revoke


@transaction.atomic
def employee_upsert(
    *, user, mail: str, given_name: str = "", surname: str = "", department: str = "", directory_dn: str = ""
) -> Employee:
    employee = Employee.objects.filter(user=user).first() or Employee(user=user)
    employee.mail = mail.strip().lower()
    employee.given_name = given_name.strip()
    employee.surname = surname.strip()
    employee.department = department.strip()
    employee.directory_dn = directory_dn.strip()
    employee.full_clean()
    employee.save()
    return employee


@transaction.atomic
def employee_create(*, actor, username: str, mail: str, **fields) -> Employee:
    """A new employee record, with a password-less account when the username has none
    (a directory log-in or a PKI administrator gives it a way in later)."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is not None and Employee.objects.filter(user=user).exists():
        raise ValidationError({"username": f"{username} has an employee record already; change that one instead."})
    if user is None:
        user = user_model(username=username, email=mail)
        user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
    employee = employee_upsert(user=user, mail=mail, **fields)
    audit_record(action=AuditAction.EMPLOYEE_CREATED, actor=actor, obj=employee, details={"username": username, "mail": employee.mail})
    return employee


@transaction.atomic
def employee_update(*, employee: Employee, actor, **changes) -> Employee:
    """Replace the given fields of an employee record; the audit log names the fields that changed."""
    current = {
        "mail": employee.mail,
        "given_name": employee.given_name,
        "surname": employee.surname,
        "department": employee.department,
        "directory_dn": employee.directory_dn,
    }
    unknown = set(changes) - set(current)
    if unknown:
        raise ValidationError({name: "This field cannot be changed here." for name in sorted(unknown)})
    employee = employee_upsert(user=employee.user, **{**current, **changes})
    changed = sorted(key for key in changes if changes[key] != current[key])
    if changed:
        audit_record(action=AuditAction.EMPLOYEE_CHANGED, actor=actor, obj=employee, details={"fields": changed})
    return employee


@transaction.atomic
def employee_offboard(*, user, actor=None) -> list[Certificate]:
    """Revoke the person's certificates, withdraw pending requests, deactivate the account.

    Escrow records stay: mail encrypted to the leaver must stay readable for the organization.
    """
    if actor is not None and not (actor.is_active and actor.has_perm("enrollment.revoke_certificate")):
        raise NotAllowed("Only PKI administrators and approvers can offboard employees.")
    user = get_user_model().objects.select_for_update().get(pk=user.pk)
    if actor is not None and actor.pk == user.pk:
        raise SeparationOfDuties("You cannot offboard yourself.")
    revoked = [
        certificate_revoke(serial=certificate.serial, actor=actor, reason="cessation_of_operation", comment="offboarded")
        for certificate in Certificate.objects.filter(employee__user=user, status=Certificate.Status.VALID)
    ]
    withdrawn = CertificateRequest.objects.filter(employee__user=user, state=CertificateRequest.State.PENDING).update(
        state=CertificateRequest.State.REJECTED, reason="The employee left (offboarded).", decided_at=timezone.now()
    )
    user.is_active = False
    user.save(update_fields=["is_active"])
    audit_record(
        action=AuditAction.EMPLOYEE_OFFBOARDED,
        actor=actor,
        obj=user,
        details={
            "username": user.get_username(),
            "revoked": [certificate.serial for certificate in revoked],
            "pending_requests_withdrawn": withdrawn,
        },
    )
    return revoked
