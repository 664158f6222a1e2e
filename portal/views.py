"""Self-service pages for employees."""

from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.events import AuditAction
from audit.services import audit_record
from core.downloads import attachment
from core.exceptions import NotFound, PickupUnavailable, PortalError, error_message
from core.sessions import fresh_authentication_required, mark_authenticated
from enrollment import selectors
from enrollment.bundles import DOWNLOAD_FORMATS
from enrollment.models import Employee
from enrollment.pki.pkcs12_clients import CLIENT_ADVICE, client_from_user_agent
from enrollment.revocation.services import certificate_revoke
from enrollment.services.requests import certificate_renewal_request, certificate_request_create
from escrow.forms import Pkcs12DownloadForm
from escrow.services.pickups import SIGNING_KEY_REDOWNLOAD_HOURS, pickup_copy_export, pickup_unavailable_message

from .forms import CertificateRequestForm, ReauthenticateForm, RevokeOwnForm
from .home_state import home_state_of
from .install_views import install_page_for
from .sessions import sessions_end_everywhere


def _employee(user) -> Employee | None:
    return Employee.objects.filter(user=user).first()


@login_required
@never_cache
def home(request):
    advice = client_from_user_agent(request.headers.get("User-Agent", ""))
    return render(
        request,
        "portal/home.html",
        {
            "state": home_state_of(user=request.user),
            "request_form": CertificateRequestForm(label_suffix=""),
            "revoke_form": RevokeOwnForm(label_suffix=""),
            "advice": advice,
            "install_client": install_page_for(advice),
            "pickup_days": settings.PORTAL_PICKUP_DAYS,
            "renewal_days": settings.PORTAL_RENEWAL_WINDOW_DAYS,
        },
    )


@login_required
@require_POST
def request_certificate(request):
    employee = _employee(request.user)
    form = CertificateRequestForm(request.POST)
    if employee is None:
        messages.error(request, "Your account has no employee record with a mailbox; ask a PKI administrator.")
    elif form.is_valid():
        try:
            created = certificate_request_create(employee=employee, submitted_by=request.user, **form.cleaned_data)
        except (ValidationError, PortalError) as exc:
            messages.error(request, error_message(exc))
        else:
            messages.success(request, f"Request #{created.pk} submitted. An approver will review it.")
    else:
        messages.error(request, "Choose a key type and a certificate type from the lists.")
    return redirect("portal:home")


@login_required
@require_POST
def revoke_own_certificate(request, serial: str):
    form = RevokeOwnForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a reason and confirm that revocation is final.")
        return redirect("portal:home")
    try:
        certificate = certificate_revoke(serial=serial, actor=request.user, reason=form.cleaned_data["reason"])
    except NotFound:
        raise Http404("No such certificate") from None
    except (ValidationError, PortalError) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, f"Certificate {certificate.serial} is revoked. Request a new one below.")
    return redirect("portal:home")


@login_required
@require_POST
def renew_certificate(request, serial: str):
    try:
        renewal = certificate_renewal_request(serial=serial, user=request.user)
    except NotFound:
        raise Http404("No such certificate") from None
    except (ValidationError, PortalError) as exc:
        messages.error(request, error_message(exc))
        return redirect("portal:home")
    if renewal.state == renewal.State.ISSUED:
        messages.success(request, f"Renewed: your new certificate {renewal.certificate.serial} is ready to download.")
    elif renewal.state == renewal.State.FAILED:
        messages.error(request, f"The renewal (request #{renewal.pk}) failed: {renewal.reason}")
    else:
        messages.success(request, f"Renewal request #{renewal.pk} submitted. An approver will review it.")
    return redirect("portal:home")


def _download_form(request, *, advice) -> Pkcs12DownloadForm:
    """The download form with the format for the employee's device first and chosen."""
    form = Pkcs12DownloadForm(request.POST or None, initial={"format": advice.fmt}, label_suffix="")
    recommended = sorted(DOWNLOAD_FORMATS.items(), key=lambda item: item[0] != advice.fmt)
    form.fields["format"].choices = [
        (value, f"{label} (recommended for your device)" if value == advice.fmt else label)
        for value, label in recommended
    ]
    return form


@login_required
@never_cache
@fresh_authentication_required
@require_http_methods(["GET", "POST"])
def download_pkcs12(request, serial: str):
    """The employee's key: PKCS#12 (compatible or modern) or an Apple profile, again while the window is open."""
    try:
        certificate = selectors.certificate_of_owner(user=request.user, serial=serial)
    except NotFound:
        raise Http404("No such certificate") from None
    advice = client_from_user_agent(request.headers.get("User-Agent", ""))
    form = _download_form(request, advice=advice)
    pickup = getattr(certificate, "pickup", None)
    unavailable = ""
    if certificate.status != certificate.Status.VALID:
        unavailable = f"The certificate {certificate.serial} is {certificate.status}; its key is not handed out."
    elif pickup is None or pickup.expires_at <= timezone.now():
        unavailable = pickup_unavailable_message(certificate=certificate)
    elif request.method == "POST" and form.is_valid():
        try:
            certificate, download = pickup_copy_export(
                actor=request.user,
                serial=serial,
                passphrase=form.cleaned_data["passphrase"],
                fmt=form.cleaned_data["format"],
                include_passphrase=request.POST.get("include_passphrase") == "on",
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        except PickupUnavailable as exc:
            unavailable = exc.message
        except PortalError as exc:
            form.add_error(None, exc.message)
        else:
            return attachment(download.data, download.content_type, download.filename, private=True)
    context = {
        "certificate": certificate,
        "form": form,
        "advice": advice,
        "clients": CLIENT_ADVICE,
        "pickup": pickup,
        "escrowed": hasattr(certificate, "escrow"),
        "redownload_hours": SIGNING_KEY_REDOWNLOAD_HOURS,
        "unavailable": unavailable,
    }
    return render(request, "portal/download.html", context, status=410 if unavailable else 200)


@login_required
@require_GET
def download_certificate(request, serial: str, fmt: str):
    try:
        certificate = selectors.certificate_of_owner(user=request.user, serial=serial)
    except NotFound:
        raise Http404("No such certificate") from None
    if fmt not in {"pem", "cer", "der"}:
        raise Http404("Unknown format")
    if fmt == "pem":
        return attachment(
            certificate.x509.public_bytes(Encoding.PEM), "application/x-pem-file", f"{certificate.mailbox}.pem"
        )
    return attachment(
        certificate.x509.public_bytes(Encoding.DER), "application/pkix-cert", f"{certificate.mailbox}.cer"
    )


@require_GET
def ca_chain(request):
    try:
        ca = selectors.issuing_ca()
    except PortalError:
        raise Http404("No CA") from None
    pem = b"".join(item.certificate.public_bytes(Encoding.PEM) for item in ca.chain())
    return attachment(pem, "application/x-pem-file", "ca-chain.pem")


@login_required
@never_cache
@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def reauthenticate(request):
    """The password again, before a private key leaves the portal (core.sessions)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("portal:home")
    form = ReauthenticateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        confirmed = authenticate(request, username=request.user.get_username(), password=form.cleaned_data["password"])
        if confirmed is not None and confirmed.pk == request.user.pk:
            mark_authenticated(request)
            audit_record(action=AuditAction.AUTH_REAUTHENTICATED, actor=request.user, details={"next": target[:200]})
            return redirect(target)
        form.add_error("password", "That is not your password.")
    return render(request, "portal/reauthenticate.html", {"form": form, "next": target})


@login_required
@require_POST
def log_out_everywhere(request):
    """End every session of this account, on every device, and revoke its API tokens."""
    revoked = sessions_end_everywhere(user=request.user)
    logout(request)
    tokens = f" and {revoked} API token{'' if revoked == 1 else 's'} revoked" if revoked else ""
    messages.success(request, f"Every session of your account has ended{tokens}. Log in again.")
    return redirect("login")
