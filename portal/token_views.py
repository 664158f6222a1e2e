"""Self-service page for API tokens: list, create (the token is shown once, on this answer), revoke."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from enrollment.exceptions import PortalError

from .services import (
    DEFAULT_TOKEN_LIFETIME_DAYS,
    MAX_TOKEN_LIFETIME_DAYS,
    api_token_create,
    api_token_revoke,
    api_tokens_of_user,
)

LIFETIME_CHOICES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "1 year"), (MAX_TOKEN_LIFETIME_DAYS, "2 years")]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. the script that uses it.")
    expires_in_days = forms.TypedChoiceField(
        label="Valid for", choices=LIFETIME_CHOICES, coerce=int, initial=DEFAULT_TOKEN_LIFETIME_DAYS
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def tokens(request):
    form = TokenForm(request.POST or None, label_suffix="")
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = api_token_create(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]:
                form.add_error(field if field in form.fields else None, errors)
        else:
            form = TokenForm(label_suffix="")
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
