from cryptography.hazmat.primitives.serialization import Encoding
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from core.admin_tools import ReadOnlyAdmin, action_confirmation
from core.exceptions import ConfigurationError, PortalError, error_message
from enrollment.revocation.services import certificate_revoke

from .admin_filters import CERTIFICATE_DASHBOARD_FILTERS, EnrollmentBatchFilter
from .admin_queue import ApprovalQueueMixin, PendingByDefaultStateFilter
from .directory.drain import DirectoryNotConfigured, publications_retry
from .models import Certificate, CertificateAuthority, CertificateRequest, DirectoryPublication
from .pki.crl import REVOCATION_REASON_NAMES
from .pki.names import name_review
from .pki.serials import compact_hex, normalize_serial


class RevokeForm(forms.Form):
    reason = forms.ChoiceField(
        choices=[(name, name.replace("_", " ")) for name in REVOCATION_REASON_NAMES],
        help_text="RFC 5280 reason; it is published in the CRL and OCSP responses.",
    )
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, required=False)


@admin.register(CertificateRequest)
class CertificateRequestAdmin(ApprovalQueueMixin, ReadOnlyAdmin):
    """The approval queue (admin_queue.py): pending first, a decision column and page for approvers."""

    # Compact, so that the state and the decision fit at 1280 px (beside both sidebars).
    list_display = ["request_column", "employee_column", "certificate_column", "state", "decision"]
    list_filter = [
        ("state", PendingByDefaultStateFilter), "key_type", "certificate_type", ("created_at", admin.DateFieldListFilter),
        EnrollmentBatchFilter,
    ]
    search_fields = ["employee__given_name", "employee__surname", "employee__mail", "employee__user__username"]
    list_select_related = ["employee__user", "decided_by"]
    actions = ["approve_selected", "reject_selected"]
    fieldsets = [
        (None, {"fields": [
            "employee", "names_as_issued", "submitted_by", "key_type", "certificate_type", "state", "created_at",
            "decided_by", "decided_at", "reason", "certificate_link",
        ]}),
        ("The employee", {"fields": ["employee_details", "employee_certificates", "employee_requests"]}),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]
    # No date hierarchy (its DISTINCT over the matching rows is a scan at 100,000 requests) and no
    # count of every request beside the filtered one: the created_at filter covers the dates (issue 13).
    show_full_result_count = False

    @admin.display(description="employee", ordering="employee__mail")
    def employee_column(self, obj):
        return format_html('{}<br><span class="quiet">{}</span>', obj.employee.display_name, obj.employee.mail)

    @admin.display(description="certificate", ordering="certificate_type")
    def certificate_column(self, obj):
        return format_html("{}<br><span class=\"quiet\">{}</span>", obj.certificate_type, obj.key_type)

    @admin.display(description="request", ordering="created_at")
    def request_column(self, obj):
        return format_html('#{}<br><span class="quiet">{}</span>', obj.pk, f"{obj.created_at:%Y-%m-%d %H:%M}")

    @admin.display(description="names as the certificate carries them")
    def names_as_issued(self, obj):
        """Every non-ASCII character as <U+XXXX>, and the UTS #39 warnings (mixed scripts, look-alikes)."""
        employee = obj.employee
        review = name_review(
            given_name=employee.given_name, surname=employee.surname, mailbox=employee.mail,
            department=employee.department,
        )
        labels = {"given_name": "given name", "surname": "surname", "mailbox": "mailbox", "department": "department"}
        rows = format_html_join(
            "", "<li>{}: <code>{}</code></li>", ((labels[name], value) for name, value in review.escaped.items())
        )
        warnings = format_html_join("", '<p class="errornote">Check: {}</p>', ((warning,) for warning in review.warnings))
        return format_html('{}<ul class="name-review">{}</ul>', warnings, rows)

    @admin.display(description="certificate")
    def certificate_link(self, obj):
        rows = [
            (reverse("admin:enrollment_certificate_change", args=[certificate.pk]), certificate.serial)
            for certificate in obj.certificates.order_by("pk")
        ]
        return format_html_join(", ", '<a href="{}">{}</a>', rows) or "-"


@admin.register(Certificate)
class CertificateAdmin(ReadOnlyAdmin):
    list_display = [
        "serial", "mailbox", "employee", "usage", "key_type", "certificate_type", "status", "not_before", "not_after",
    ]
    list_filter = [
        "status", "usage", "key_type", "certificate_type", "issuer", ("not_after", admin.DateFieldListFilter),
        *CERTIFICATE_DASHBOARD_FILTERS,  # the dashboard's numbers link to these (admin_filters.py)
    ]
    search_fields = ["serial", "mailbox", "employee__given_name", "employee__surname", "fingerprint_sha256"]
    list_select_related = ["employee"]
    exclude = ["der"]
    readonly_fields = [
        "serial", "subject", "mailbox", "employee", "issuer", "request", "usage", "key_type", "certificate_type",
        "not_before", "not_after", "fingerprint_sha256", "status", "revoked_at", "revocation_reason", "revoked_by",
        "revocation_comment", "pem",
    ]
    actions = ["revoke_selected"]

    def get_search_results(self, request, queryset, search_term):
        # Serials and fingerprints as openssl or certutil print them: upper case, colons, leading zeros.
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        compact = compact_hex(search_term)
        if compact:
            results |= queryset.filter(Q(serial=normalize_serial(search_term)) | Q(fingerprint_sha256=compact))
        return results, may_have_duplicates

    def has_revoke_permission(self, request):
        return request.user.has_perm("enrollment.revoke_certificate")

    @admin.action(description="Revoke selected certificates…", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        form = RevokeForm(request.POST if "confirm" in request.POST else None)
        if "confirm" in request.POST and form.is_valid():
            for serial in queryset.order_by("pk").values_list("serial", flat=True):
                try:
                    certificate_revoke(
                        serial=serial, actor=request.user, reason=form.cleaned_data["reason"],
                        comment=form.cleaned_data["comment"],
                    )
                except (PortalError, ValidationError) as exc:
                    self.message_user(request, f"Could not revoke {serial}: {error_message(exc, separator='; ')}", messages.ERROR)
                else:
                    self.message_user(
                        request, f"Revoked {serial} ({form.cleaned_data['reason']}); OCSP says so now, the next CRL served lists it.", messages.SUCCESS
                    )
            return None
        return action_confirmation(
            self, request, queryset, form=form, title="Revoke certificates",
            question="Revoke these certificates? Revocation is final: it is published in the CRL and OCSP, "
            "and the certificates are removed from the directory.",
            action="revoke_selected", button="Revoke",
        )

    @admin.display(description="PEM")
    def pem(self, obj):
        return format_html("<pre>{}</pre>", obj.x509.public_bytes(Encoding.PEM).decode())


@admin.register(CertificateAuthority)
class CertificateAuthorityAdmin(ReadOnlyAdmin):
    list_display = ["common_name", "slug", "is_issuing", "parent", "crl_number", "crl_next_update"]
    exclude = ["certificate_der", "crl_der", "key_reference"]
    readonly_fields = ["slug", "common_name", "parent", "is_issuing", "key_backend", "base_url", "crl_number", "crl_next_update"]


# --- Directory publication (appended with the directory publisher) ------------------------



@admin.register(DirectoryPublication)
class DirectoryPublicationAdmin(ReadOnlyAdmin):
    list_display = [
        "certificate", "state", "attempts", "last_error_short", "next_attempt_at", "last_attempt_at", "entry_dn",
    ]
    list_filter = ["state"]
    search_fields = ["certificate__serial", "certificate__mailbox", "entry_dn"]
    list_select_related = ["certificate"]
    readonly_fields = [
        "certificate", "state", "entry_dn", "attempts", "last_error", "last_attempt_at", "next_attempt_at",
        "created_at", "updated_at",
    ]
    actions = ["retry_selected"]

    @admin.display(description="last error")
    def last_error_short(self, obj):
        return (obj.last_error[:100] + "…") if len(obj.last_error) > 100 else obj.last_error

    def has_retry_permission(self, request):
        return request.user.has_perm("enrollment.retry_directorypublication")

    @admin.action(description="Retry publication now", permissions=["retry"])
    def retry_selected(self, request, queryset):
        try:
            outcome = publications_retry(publication_ids=list(queryset.values_list("pk", flat=True)), actor=request.user)
        except DirectoryNotConfigured as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        except ConfigurationError as exc:
            self.message_user(request, f"The directory is misconfigured: {exc.message}", messages.ERROR)
            return
        except (PortalError, ValidationError) as exc:
            self.message_user(request, error_message(exc), messages.ERROR)
            return
        for result in outcome.results:
            row = result.publication
            serial = row.certificate.serial
            if result.skipped:
                self.message_user(request, f"Certificate {serial}: nothing to do ({row.get_state_display()}).", messages.INFO)
            elif result.ok:
                self.message_user(request, f"Certificate {serial}: {row.get_state_display()} ({row.entry_dn}).", messages.SUCCESS)
            else:
                self.message_user(
                    request,
                    f"Certificate {serial}: {result.operation} failed: {result.error.rstrip('.')}. "
                    f"It is retried automatically from {row.next_attempt_at:%Y-%m-%d %H:%M} UTC.",
                    messages.ERROR,
                )
        if outcome.not_attempted:
            self.message_user(
                request,
                f"{len(outcome.not_attempted)} more not attempted: the directory cannot be used.",
                messages.WARNING,
            )


from . import admin_employees  # noqa: E402,F401,I001 - registers the employee and offboarding admins
from . import admin_batches  # noqa: E402,F401,I001 - registers the enrollment batches admin
