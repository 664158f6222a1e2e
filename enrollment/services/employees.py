"""Employees: the identities certificates bind, created and changed under audit, and leavers."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record
from core.exceptions import InvalidState, NotAllowed, SeparationOfDuties

from .. import signals
from ..models import Certificate, CertificateRequest, Employee, OffboardingRequest
from ..pki.names import NameRefused, mailbox_clean
from ..revocation.services import certificate_revoke
from ..roles import APPROVERS, holds_trusted_role, is_pki_administrator

# What a PKI administrator may change on an employee record. Never `user`: an identity is
# not re-linked to another account (its certificates, keys and recoveries follow the account).
EMPLOYEE_FIELDS = ("mail", "given_name", "surname", "department", "directory_dn")


def mail_domain_error(mail: str) -> str:
    """Why this CA does not certify `mail` (PORTAL_MAIL_DOMAINS; empty: any domain), or ""."""
    domain = mail.rsplit("@", 1)[-1].lower()
    allowed = [name.lower() for name in settings.PORTAL_MAIL_DOMAINS]
    if allowed and domain not in allowed:
        return f"This CA does not certify addresses at {domain}."
    return ""


def normalized_values(fields: dict) -> dict:
    values = {name: (value or "").strip() for name, value in fields.items()}
    if "mail" in values:
        try:  # the domain in A-labels, as stored, before the domain rule compares it
            values["mail"] = mailbox_clean(values["mail"]).lower()
        except NameRefused:
            values["mail"] = values["mail"].lower()  # the model's validation says why
    return values


def _require(actor, permission: str, message: str) -> None:
    if actor is not None and not (actor.is_active and actor.has_perm(permission)):
        raise NotAllowed(message)


@transaction.atomic
def employee_upsert(
    *, user, mail: str, given_name: str = "", surname: str = "", department: str = "", directory_dn: str = ""
) -> Employee:
    """The employee record of `user`, created or overwritten; no audit event, no domain rule, no certificate rule.

    Only for seeding records nobody has certified yet: the demo bootstrap (accounts it creates)
    and test fixtures. Nothing a person or the directory reaches calls it: people change
    employees through employee_create / employee_update (or an identity change request,
    services.identity_changes), the directory log-in through directory.user_sync (audited).
    """
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
    (a directory log-in or a PKI administrator gives it a way in later).

    An existing account is used only when it has no employee record yet. The mailbox must be
    at a domain this CA certifies (PORTAL_MAIL_DOMAINS).
    """
    _require(actor, "enrollment.add_employee", "Only PKI administrators create employees.")
    unknown = set(fields) - set(EMPLOYEE_FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be set here." for name in sorted(unknown)})
    values = normalized_values({**fields, "mail": mail})
    errors = {}
    if domain_error := mail_domain_error(values["mail"]):
        errors["mail"] = domain_error
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is not None and Employee.objects.filter(user=user).exists():
        errors["username"] = f"{username} has an employee record already; change that one instead."
    if errors:
        raise ValidationError(errors)
    account = "existing" if user is not None else "created"
    if user is None:
        user = user_model(username=username, email=values["mail"])
        user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
    employee = employee_upsert(user=user, **values)
    audit_record(
        action=AuditAction.EMPLOYEE_CREATED,
        actor=actor,
        obj=employee,
        details={
            "username": username,
            "account": account,
            "mail": employee.mail,
            "given_name": employee.given_name,
            "surname": employee.surname,
        },
    )
    signals.employee_created.send(sender=Employee, employee=employee, account_created=account == "created", actor=actor)
    return employee


# What valid certificates bind, field by field: every certificate names the mailbox, a
# sponsor-validated one also the given name and surname, and every one is published at the
# employee's directory entry (a new DN would attach them to another entry, whose mail relying
# parties would then encrypt to this person's key).
IDENTITY_FIELDS = ("mail", "given_name", "surname", "directory_dn")
_SPONSOR_BOUND = ("given_name", "surname")
IDENTITY_LABELS = {"mail": "mailbox", "given_name": "given name", "surname": "surname", "directory_dn": "directory DN"}


def identity_bindings(*, employee: Employee, fields) -> dict[str, list[str]]:
    """The serials of the valid certificates that bind each of `fields` (fields none binds are left out)."""
    valid = Certificate.objects.filter(
        employee=employee, status=Certificate.Status.VALID, not_after__gt=timezone.now()
    ).order_by("pk")
    bindings = {}
    for name in IDENTITY_FIELDS:
        if name not in fields:
            continue
        certificates = valid.filter(certificate_type="sponsor-strict") if name in _SPONSOR_BOUND else valid
        if serials := list(certificates.values_list("serial", flat=True)):
            bindings[name] = serials
    return bindings


def _bound_by_certificates(employee: Employee, changed: dict) -> dict[str, str]:
    return {
        name: (
            f"The {IDENTITY_LABELS[name]} is bound by valid certificates ({', '.join(serials)}): changing it needs "
            "a second person. Ask for it with \"Request identity change\" (an identity change request, with a "
            "reason); another PKI administrator or an approver confirms it, and the certificates naming the old "
            "value are then revoked."
        )
        for name, serials in identity_bindings(employee=employee, fields=changed).items()
    }


@transaction.atomic
def employee_update(*, employee: Employee, actor, **changes) -> Employee:
    """Replace the given fields of an employee record (`EMPLOYEE_FIELDS`); audited with old → new.

    Refused (ValidationError):
    - `user`: an employee record is never re-linked to another account;
    - a new mailbox at a domain this CA does not certify (PORTAL_MAIL_DOMAINS; a stored one
      that predates the setting is not re-checked while it stays);
    - a field valid certificates bind (`identity_bindings`: the mailbox and directory DN while
      any is valid, the names while a sponsor-validated one is): the error names the serials
      and the way, an identity change request (services.identity_changes), which needs a
      second person and revokes the certificates naming the old value.
    """
    _require(actor, "enrollment.change_employee", "Only PKI administrators change employees.")
    if {"user", "user_id"} & set(changes):
        raise ValidationError(
            {"user": "An employee record stays linked to its account; it is never moved to another user."}
        )
    unknown = set(changes) - set(EMPLOYEE_FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be changed here." for name in sorted(unknown)})
    # The stored row, locked: the caller's copy may carry the new values already (a bound form).
    employee = Employee.objects.select_for_update(no_key=True).select_related("user").get(pk=employee.pk)
    wanted = normalized_values(changes)
    changed = {
        name: (getattr(employee, name), value) for name, value in wanted.items() if value != getattr(employee, name)
    }
    if not changed:
        return employee
    errors = {}
    if "mail" in changed and (domain_error := mail_domain_error(changed["mail"][1])):
        errors["mail"] = domain_error
    errors = {**_bound_by_certificates(employee, changed), **errors}
    if errors:
        raise ValidationError(errors)
    for name, (_, value) in changed.items():
        setattr(employee, name, value)
    employee.full_clean()
    employee.save(update_fields=sorted(changed))
    if "directory_dn" in changed:
        signals.employee_directory_dn_changed.send(sender=Employee, employee=employee)
    audit_record(
        action=AuditAction.EMPLOYEE_CHANGED,
        actor=actor,
        obj=employee,
        details={
            "username": employee.user.get_username(),
            "fields": sorted(changed),
            "changes": {name: {"old": old, "new": new} for name, (old, new) in sorted(changed.items())},
        },
    )
    return employee


def _may_offboard_trusted(actor, user) -> bool:
    """A PKI administrator (or a superuser); only a superuser offboards a superuser."""
    if not actor.is_active:
        return False
    if user.is_superuser:
        return actor.is_superuser
    return is_pki_administrator(actor)


def _approvers_left_warning(user) -> str:
    """What offboarding `user` would cost the key recovery (it needs distinct approvers), or ""."""
    if not user.groups.filter(name=APPROVERS).exists():
        return ""
    left = (
        get_user_model().objects.filter(is_active=True, groups__name=APPROVERS).exclude(pk=user.pk).distinct().count()
    )
    needed = settings.PORTAL_RECOVERY_APPROVALS
    if left >= needed:
        return ""
    return (
        f"After offboarding {user.get_username()}, {left} approver(s) remain, but every key recovery needs "
        f"{needed} distinct approvers: no escrowed key could be recovered any more. Add approvers first, "
        "or confirm that you accept this."
    )


@transaction.atomic
def offboarding_request_create(*, user, actor, reason: str) -> OffboardingRequest:
    """The first of two PKI administrators asks to offboard an account holding a trusted role."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the account is offboarded."})
    if not holds_trusted_role(user):
        raise ValidationError(f"{user.get_username()} holds no trusted role: offboard them directly.")
    if not _may_offboard_trusted(actor, user):
        raise NotAllowed(_trusted_refusal(user))
    if actor.pk == user.pk:
        raise SeparationOfDuties("You cannot offboard yourself.")
    open_request = OffboardingRequest.objects.select_for_update().filter(user=user, confirmed_at__isnull=True).first()
    if open_request is not None:
        raise InvalidState(
            f"Offboarding {user.get_username()} was requested already by {open_request.requested_by.get_username()}; "
            "another PKI administrator confirms it by offboarding."
        )
    request = OffboardingRequest.objects.create(user=user, requested_by=actor, reason=reason)
    audit_record(
        action=AuditAction.EMPLOYEE_OFFBOARDING_REQUESTED,
        actor=actor,
        obj=user,
        details={"username": user.get_username(), "reason": reason, "request": request.pk},
    )
    return request


def _trusted_refusal(user) -> str:
    if user.is_superuser:
        return f"Only a superuser can offboard the superuser {user.get_username()}."
    return f"{user.get_username()} holds a trusted role: only PKI administrators can offboard them."


@transaction.atomic
def employee_offboard(*, user, actor=None, acknowledge_consequences: bool = False) -> list[Certificate]:
    """Revoke the person's certificates, withdraw pending requests, deactivate the account.

    Approvers and PKI administrators offboard employees. An account holding a trusted role
    (a group of enrollment.roles.TRUSTED_ROLES, staff or superuser) needs two PKI
    administrators: one requests it (offboarding_request_create), another confirms it by
    calling this; only superusers offboard a superuser. Removing an approver the key
    recovery still needs requires `acknowledge_consequences`. `actor` None is the command
    line (the server's operator). Escrow records stay: mail encrypted to the leaver must
    stay readable for the organization.
    """
    if actor is not None and not (actor.is_active and actor.has_perm("enrollment.revoke_certificate")):
        raise NotAllowed("Only PKI administrators and approvers can offboard employees.")
    user = get_user_model().objects.select_for_update(no_key=True).get(pk=user.pk)
    if actor is not None and actor.pk == user.pk:
        raise SeparationOfDuties("You cannot offboard yourself.")
    confirmed = None
    if actor is not None and holds_trusted_role(user):
        if not _may_offboard_trusted(actor, user):
            raise NotAllowed(_trusted_refusal(user))
        confirmed = OffboardingRequest.objects.select_for_update().filter(user=user, confirmed_at__isnull=True).first()
        if confirmed is None:
            raise NotAllowed(
                f"{user.get_username()} holds a trusted role: offboarding needs two PKI administrators. "
                "Request it first; another PKI administrator then offboards."
            )
        if confirmed.requested_by_id == actor.pk:
            raise SeparationOfDuties(
                f"You requested the offboarding of {user.get_username()}: another PKI administrator must confirm it."
            )
    warning = _approvers_left_warning(user)
    if warning and not acknowledge_consequences:
        raise InvalidState(warning)
    revoked = [
        certificate_revoke(serial=certificate.serial, actor=actor, reason="cessation_of_operation", comment="offboarded")
        for certificate in Certificate.objects.filter(employee__user=user, status=Certificate.Status.VALID)
    ]
    withdrawn = CertificateRequest.objects.filter(employee__user=user, state=CertificateRequest.State.PENDING).update(
        state=CertificateRequest.State.REJECTED, reason="The employee left (offboarded).", decided_at=timezone.now()
    )
    if confirmed is not None:
        confirmed.confirmed_by, confirmed.confirmed_at = actor, timezone.now()
        confirmed.save(update_fields=["confirmed_by", "confirmed_at"])
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
            **({"requested_by": confirmed.requested_by.get_username()} if confirmed is not None else {}),
            **({"accepted_consequence": warning} if warning else {}),
        },
    )
    return revoked
