"""The second factor of the trusted roles (django-otp): who needs one, enrolment, verification, reset.

Everyone who holds a trusted role (enrollment.roles.holds_trusted_role: approvers, auditors,
PKI administrators, key recovery agents, staff and superusers) proves a second factor
before the portal lets them act, as the CA/Browser Forum's network security requirements
ask of accounts that can cause issuance: a TOTP authenticator app (RFC 6238,
django_otp.plugins.otp_totp), and ten single-use recovery codes (otp_static) for the day
the phone is lost. Employees without such a role need none.

Enrolment happens at the first log-in (an unconfirmed device, its otpauth:// URL as a QR
code, confirmed with a current code; the recovery codes are shown once); a confirmed
device is never replaced by its owner, only reset by an administrator
(`manage.py reset_second_factor`). Every enrolment, wrong code, recovery-code use and reset
is an audit event. Where the factor is demanded (the pages, the admin, the API) is
second_factor_guards.py; the pages are second_factor_views.py.

The demo accounts of `make run` (enrollment.demo_accounts) are exempt in development
unless PORTAL_DEMO_2FA is on; outside development nobody is.
"""

from __future__ import annotations

from base64 import b32encode
from dataclasses import dataclass

import segno
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.events import AuditAction
from audit.services import audit_record
from core.exceptions import SecondFactorRequired
from enrollment.demo_accounts import DEMO_USERNAMES
from enrollment.roles import holds_trusted_role

RECOVERY_CODE_COUNT = 10
AUTHENTICATOR_NAME = "Authenticator app"
RECOVERY_CODES_NAME = "Recovery codes"
TOTP_DIGITS = 6


# --- Who needs it ------------------------------------------------------------------------


def second_factor_exempt(user) -> bool:
    """A demo account of `make run`, in development, without PORTAL_DEMO_2FA. Never in production."""
    return bool(
        settings.DEVELOPMENT
        and not settings.PORTAL_DEMO_2FA
        and user.is_authenticated
        and user.get_username() in DEMO_USERNAMES
    )


def second_factor_required(user) -> bool:
    """Whether `user` must prove a second factor before acting: every trusted role, bar the exemption."""
    if user is None or not user.is_authenticated:
        return False
    return holds_trusted_role(user) and not second_factor_exempt(user)


def second_factor_enrolled(user) -> bool:
    """Whether `user` has a confirmed authenticator app."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def session_verified(request) -> bool:
    """Whether this session passed the second factor (django_otp's OTPMiddleware tells)."""
    is_verified = getattr(getattr(request, "user", None), "is_verified", None)
    return bool(callable(is_verified) and is_verified())


def second_factor_satisfied(request) -> bool:
    """A page or admin request may go ahead: its user needs no second factor, or the session passed it."""
    return not second_factor_required(request.user) or session_verified(request)


def recovery_codes_remaining(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


# --- Enrolment ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrolmentOffer:
    """What the enrolment page shows for a device that is not confirmed yet."""

    device: TOTPDevice
    secret: str  # base32, in groups of four, for typing into an app by hand
    otpauth_url: str
    qr_svg: str  # an inline <svg> of otpauth_url


def _grouped(text: str, size: int = 4) -> str:
    return " ".join(text[index : index + size] for index in range(0, len(text), size))


@transaction.atomic
def second_factor_enrolment_start(*, user, new_key: bool = True) -> EnrolmentOffer:
    """An unconfirmed authenticator device of `user`, as a QR code and text.

    `new_key` (each time the set-up page is opened): a fresh device replaces any unconfirmed
    one, so that whoever saw an earlier set-up page cannot use its key once the owner confirms;
    without it (the page again after a mistyped code), the device on screen stays. Refused once
    a device is confirmed: another needs the administrator's reset, so that someone with only
    the password cannot replace the owner's factor.
    """
    if second_factor_enrolled(user):
        raise SecondFactorRequired("Your second factor is set up already; verify it with a code from your app.")
    pending = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("-id")
    device = None if new_key else pending.first()
    if device is None:
        pending.delete()
        device = TOTPDevice(user=user, name=AUTHENTICATOR_NAME, confirmed=False, digits=TOTP_DIGITS)
        device.full_clean()
        device.save()
    url = device.config_url
    qr_svg = segno.make(url, error="m").svg_inline(scale=4, border=2, title="QR code for your authenticator app")
    return EnrolmentOffer(
        device=device, secret=_grouped(b32encode(device.bin_key).decode()), otpauth_url=url, qr_svg=qr_svg
    )


def second_factor_enrolment_confirm(*, user, code: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the device with a current code; returns it and the new recovery codes (shown once).

    A wrong code is audited and refused (SecondFactorRequired), the device stays unconfirmed.
    """
    code = normalized_code(code)
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("-id").first()
        if device is None:
            raise SecondFactorRequired("There is no set-up in progress; open the set-up page again.")
        refusal = _check(device, code)
        if refusal is None:
            device.confirmed = True
            device.save()
            TOTPDevice.objects.filter(user=user, confirmed=False).delete()
            codes = _new_recovery_codes(user)
            audit_record(
                action=AuditAction.AUTH_SECOND_FACTOR_ENROLLED,
                actor=user,
                obj=device,
                details={"device": device.name, "recovery_codes": len(codes)},
            )
            return device, codes
    _audit_failure(user, via="enrolment", reason=refusal)
    raise SecondFactorRequired(refusal)


def _new_recovery_codes(user) -> list[str]:
    """Ten fresh recovery codes, replacing any earlier ones."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_CODES_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


# --- Verification ------------------------------------------------------------------------


def normalized_code(code: str) -> str:
    """A code as people type it: spaces and dashes dropped, recovery codes in lower case."""
    return "".join(character for character in str(code or "") if character not in " -\t").lower()[:32]


def _check(device, code: str) -> str | None:
    """None if `device` accepts `code` (and spends it), else why not."""
    allowed, throttle = device.verify_is_allowed()
    if not allowed:
        locked_until = (throttle or {}).get("locked_until")
        wait = max(1, int((locked_until - timezone.now()).total_seconds()) + 1) if locked_until else None
        return f"Too many wrong codes: wait {wait} seconds, then try again." if wait else "Too many wrong codes."
    if device.verify_token(code):
        return None
    if isinstance(device, StaticDevice):
        return "That recovery code is wrong or was used already."
    return "That code is wrong or was used already; type the current one from your app."


def _audit_failure(user, *, via: str, reason: str) -> None:
    audit_record(action=AuditAction.AUTH_SECOND_FACTOR_FAILED, actor=user, details={"via": via, "reason": reason})


def second_factor_verify(*, user, code: str, via: str, recovery_codes: bool = True):
    """The confirmed device that accepts `code` (it is spent: a TOTP code works once, a recovery code too).

    Six digits are the authenticator app's code; anything else is a recovery code, when
    `recovery_codes` allows them (the API does not: a script never burns one). A refusal is
    audited (auth.second_factor_failed) and raised as SecondFactorRequired; a recovery code
    that worked is audited as auth.recovery_code_used with how many are left.
    """
    code = normalized_code(code)
    is_app_code = len(code) == TOTP_DIGITS and code.isdigit()
    model = TOTPDevice if is_app_code or not recovery_codes else StaticDevice
    with transaction.atomic():
        devices = list(model.objects.select_for_update().filter(user=user, confirmed=True).order_by("id"))
        if not code:
            refusal = "Type the code your authenticator app shows."
        elif not devices:
            refusal = "Your account has no second factor yet; log in on the web to set it up."
        elif not is_app_code and not recovery_codes:
            refusal = "Send the six-digit code your authenticator app shows."
        else:
            for device in devices:
                refusal = _check(device, code)
                if refusal is None:
                    if model is StaticDevice:
                        audit_record(
                            action=AuditAction.AUTH_RECOVERY_CODE_USED,
                            actor=user,
                            obj=device,
                            details={"via": via, "remaining": recovery_codes_remaining(user)},
                        )
                    return device
    _audit_failure(user, via=via, reason=refusal)
    raise SecondFactorRequired(refusal)


def second_factor_login(request, device) -> None:
    """This session passed the second factor with `device` (a new session key, as at any privilege change)."""
    request.session.cycle_key()
    otp_login(request, device)


# --- Reset -------------------------------------------------------------------------------


@transaction.atomic
def second_factor_reset(*, user, operator: str, reason: str) -> int:
    """Remove every device and recovery code of `user` (a lost phone); their next log-in enrols anew.

    For administrators (`manage.py reset_second_factor`); audited with who ran it and why.
    Sessions verified with the old device stop counting as verified at their next request.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the second factor is reset (e.g. the ticket number)."})
    removed = 0
    for model in (TOTPDevice, StaticDevice):
        devices = model.objects.filter(user=user)
        removed += devices.count()
        devices.delete()
    audit_record(
        action=AuditAction.AUTH_SECOND_FACTOR_RESET,
        obj=user,
        details={"username": user.get_username(), "operator": operator[:150], "reason": reason[:500], "removed": removed},
    )
    return removed

