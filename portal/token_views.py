"""Self-service page for API tokens: list, create (the token is shown once, on this answer), revoke."""

import secrets

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from core.exceptions import PortalError

from .second_factor import session_verified
from .services import (
    DEFAULT_TOKEN_LIFETIME_DAYS,
    MAX_TOKEN_LIFETIME_DAYS,
    api_token_create,
    api_token_revoke,
    api_tokens_of_user,
)

LIFETIME_CHOICES = [
    (7, "7 days"),
    (30, "30 days"),
    (90, "90 days"),
    (365, "1 year"),
    (MAX_TOKEN_LIFETIME_DAYS, "2 years"),
]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. the script that uses it.")
    expires_in_days = forms.TypedChoiceField(
        label="Valid for", choices=LIFETIME_CHOICES, coerce=int, initial=DEFAULT_TOKEN_LIFETIME_DAYS
    )
    # One value per rendered form, so that reloading the answer page (which resubmits the
    # POST) does not create a second token the employee never sees.
    submission = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)


# How many submitted form values a session remembers; older ones could be replayed once.
_REMEMBERED_SUBMISSIONS = 20


def _fresh_form():
    return TokenForm(initial={"submission": secrets.token_urlsafe(16)}, label_suffix="")


def _submitted_before(request, value: str) -> bool:
    return bool(value) and value in request.session.get("token_form_submissions", [])


def _remember_submission(request, value: str) -> None:
    if value:
        used = request.session.get("token_form_submissions", [])
        request.session["token_form_submissions"] = (used + [value])[-_REMEMBERED_SUBMISSIONS:]


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def tokens(request):
    form = TokenForm(request.POST, label_suffix="") if request.method == "POST" else _fresh_form()
    created = None
    if request.method == "POST" and form.is_valid():
        if _submitted_before(request, form.cleaned_data["submission"]):
            messages.warning(
                request,
                "This form was sent already and its token is listed below. If you did not copy it, "
                "revoke it and create a new one.",
            )
            form = _fresh_form()
        else:
            try:
                created = api_token_create(
                    user=request.user,
                    name=form.cleaned_data["name"],
                    expires_in_days=form.cleaned_data["expires_in_days"],
                    second_factor=session_verified(request),
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]:
                    form.add_error(field if field in form.fields else None, errors)
            else:
                _remember_submission(request, form.cleaned_data["submission"])
                form = _fresh_form()
    response = render(
        request,
        "portal/tokens.html",
        {
            "form": form,
            "created": created,
            "tokens": api_tokens_of_user(user=request.user),
        },
    )
    return response


@login_required
@require_POST
def revoke(request, token_id: int):
    try:
        token = api_token_revoke(user=request.user, token_id=token_id)
    except PortalError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Token “{token.name}” ({token.prefix}…) is revoked.")
    return redirect("tokens:list")
