"""Self-service pages: ask for your own key back, download recovered keys and the key history."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from core.downloads import attachment
from core.exceptions import NotFound, PortalError, error_message
from core.sessions import fresh_authentication_required
from enrollment.models import Employee
from enrollment.pki.serials import normalize_serial
from escrow.selectors import escrowed_certificates, open_pickups_of
from escrow.services.pickups import key_history_pkcs12_export, recovery_pkcs12_export
from escrow.services.recovery import recovery_request_create
from escrow.services.recovery_close import recovery_request_withdraw

from .forms import ALL_KEYS, OwnKeyRecoveryForm, Pkcs12DownloadForm
from .models import RecoveryRequest


def _own_escrowed(user):
    employee = Employee.objects.filter(user=user).first()
    return employee, list(escrowed_certificates(employee)) if employee else []


@login_required
@never_cache
def index(request):
    employee, certificates = _own_escrowed(request.user)
    # The requests about the user's own keys, and those whose keys go to them.
    requests = (
        RecoveryRequest.objects.filter(Q(recipient=request.user) | Q(employee__user=request.user))
        .select_related("certificate", "employee", "requested_by", "recipient")
        .order_by("-created_at")
    )
    pickups = open_pickups_of(user=request.user)
    return render(
        request,
        "escrow/index.html",
        {
            "employee": employee,
            "requests": requests,
            "pickups": pickups,
            "form": OwnKeyRecoveryForm(certificates=certificates, label_suffix="") if certificates else None,
        },
    )


@login_required
@require_POST
def request_own(request):
    _, certificates = _own_escrowed(request.user)
    form = OwnKeyRecoveryForm(request.POST, certificates=certificates)
    if not certificates:
        messages.error(request, "You have no escrowed key to recover.")
    elif form.is_valid():
        choice = form.cleaned_data["certificate"]
        try:
            created = recovery_request_create(
                requested_by=request.user,
                reason=form.cleaned_data["reason"],
                serial="" if choice == ALL_KEYS else choice,
                employee_username=request.user.get_username() if choice == ALL_KEYS else "",
            )
        except (ValidationError, PortalError) as exc:
            messages.error(request, error_message(exc))
        else:
            messages.success(
                request,
                f"Recovery request #{created.pk} submitted. It needs {created.required_approvals} approvals; "
                "you get a mail when your key is ready.",
            )
    else:
        messages.error(request, "Choose a key and say why you need it back.")
    return redirect("escrow:index")


def _download(request, *, request_id: int, serial: str | None):
    """Shared by the single-key and the key-history download pages."""
    pickups = list(open_pickups_of(user=request.user).filter(request_id=request_id))
    if serial is not None:
        pickups = [pickup for pickup in pickups if pickup.certificate.serial == serial]
    if not pickups:
        raise Http404("No recovered key for you here")
    form = Pkcs12DownloadForm(request.POST or None, label_suffix="")
    if request.method == "POST" and form.is_valid():
        try:
            if serial is None:
                filename, data = key_history_pkcs12_export(
                    user=request.user,
                    request_id=request_id,
                    passphrase=form.cleaned_data["passphrase"],
                    fmt=form.cleaned_data["format"],
                )
                return attachment(data, "application/zip", filename, private=True)
            filename, data = recovery_pkcs12_export(
                user=request.user,
                request_id=request_id,
                serial=serial,
                passphrase=form.cleaned_data["passphrase"],
                fmt=form.cleaned_data["format"],
            )
            return attachment(data, "application/x-pkcs12", filename, private=True)
        except NotFound:
            raise Http404("No recovered key for you here") from None
        except (ValidationError, PortalError) as exc:
            form.add_error(None, error_message(exc))
    return render(
        request,
        "escrow/download.html",
        {"pickups": pickups, "history": serial is None, "form": form, "request_id": request_id},
    )


@login_required
@never_cache
@fresh_authentication_required
@sensitive_post_parameters("passphrase", "passphrase_again")
@require_http_methods(["GET", "POST"])
def download_pkcs12(request, request_id: int, serial: str):
    return _download(request, request_id=request_id, serial=normalize_serial(serial))


@login_required
@never_cache
@fresh_authentication_required
@sensitive_post_parameters("passphrase", "passphrase_again")
@require_http_methods(["GET", "POST"])
def download_history(request, request_id: int):
    return _download(request, request_id=request_id, serial=None)


@login_required
@require_POST
def withdraw(request, request_id: int):
    """The requester or the keys' owner withdraws an open recovery request."""
    try:
        withdrawn = recovery_request_withdraw(
            request_id=request_id, actor=request.user, reason=request.POST.get("reason", "")
        )
    except NotFound:
        raise Http404("No such recovery request") from None
    except (ValidationError, PortalError) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, f"Recovery request #{withdrawn.pk} is withdrawn; no agent can complete it now.")
    return redirect("escrow:index")
