"""The second-factor pages: set-up at the first log-in (QR code, confirmation, recovery codes), and verification.

The rules and the audit events are portal/second_factor.py's; second_factor_guards.py sends
trusted roles here until their session has passed the factor.
"""

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods
from django_otp.plugins.otp_static.models import StaticDevice

from core.exceptions import SecondFactorRequired

from .second_factor import (
    recovery_codes_remaining,
    second_factor_enrolled,
    second_factor_enrolment_confirm,
    second_factor_enrolment_start,
    second_factor_login,
    second_factor_required,
    second_factor_verify,
    session_verified,
)


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}),
    )


def _next_url(request) -> str:
    """Where to go afterwards: the page the user asked for, on this site only."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return reverse("portal:home")
    return target


@login_required
@never_cache
@sensitive_post_parameters("code")
@require_http_methods(["GET", "POST"])
def setup(request):
    """First log-in of a trusted role: scan the QR code, type a code, note the recovery codes."""
    target = _next_url(request)
    if not second_factor_required(request.user):
        messages.info(request, "Your account needs no second factor.")
        return redirect(target)
    if second_factor_enrolled(request.user):
        return redirect(f"{reverse('second_factor:verify')}?{urlencode({'next': target})}")
    form = CodeForm(request.POST or None, label_suffix="")
    if request.method == "POST" and form.is_valid():
        try:
            device, codes = second_factor_enrolment_confirm(user=request.user, code=form.cleaned_data["code"])
        except SecondFactorRequired as exc:
            form.add_error("code", exc.message)
        else:
            second_factor_login(request, device)
            return render(request, "portal/second_factor_recovery_codes.html", {"codes": codes, "next": target})
    # A new key each time the page is opened; the same one again after a mistyped code.
    offer = second_factor_enrolment_start(user=request.user, new_key=request.method == "GET")
    return render(
        request,
        "portal/second_factor_setup.html",
        {
            "form": form,
            "next": target,
            "secret": offer.secret,
            # segno's SVG of the otpauth:// URL: markup made here, whose only text (the title) is ours.
            "qr_svg": mark_safe(offer.qr_svg),
        },
    )


@login_required
@never_cache
@sensitive_post_parameters("code")
@require_http_methods(["GET", "POST"])
def verify(request):
    """Every later log-in: the code of the authenticator app, or one recovery code."""
    target = _next_url(request)
    if not second_factor_required(request.user) or session_verified(request):
        return redirect(target)
    if not second_factor_enrolled(request.user):
        return redirect(f"{reverse('second_factor:setup')}?{urlencode({'next': target})}")
    form = CodeForm(request.POST or None, label_suffix="")
    if request.method == "POST" and form.is_valid():
        try:
            device = second_factor_verify(user=request.user, code=form.cleaned_data["code"], via="page")
        except SecondFactorRequired as exc:
            form.add_error("code", exc.message)
        else:
            second_factor_login(request, device)
            if isinstance(device, StaticDevice):
                left = recovery_codes_remaining(request.user)
                messages.warning(
                    request,
                    f"You used a recovery code; {left} left. If your phone is lost, ask a PKI administrator "
                    "to reset your second factor and set it up again.",
                )
            return redirect(target)
    return render(request, "portal/second_factor_verify.html", {"form": form, "next": target})
