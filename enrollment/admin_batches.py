"""Enrollment batches in the admin: the list and each batch read-only, and starting one from a CSV.

Who sees batches: whoever sees every request (approvers, auditors, PKI administrators): a batch
is a summary of its requests. Who starts one: PKI administrators, as `manage.py enroll` (the
service, enrollment.bulk_batches.enrollment_batch_run, checks again). The page writes the rows in the
web request (a few thousand rows take seconds); issuance of requests approved by policy goes to
the workers (without a broker, at most bulk.WEB_ISSUANCE_LIMIT, issued in this process).
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core.admin_tools import ReadOnlyAdmin
from core.exceptions import PortalError, error_message

from .bulk import (
    REQUIRED_COLUMNS,
    WEB_ISSUANCE_LIMIT,
    BulkFileRefused,
    bulk_file_read,
)
from .bulk_batches import enrollment_auto_approve_applies, enrollment_batch_run
from .models import EnrollmentBatch
from .models_batches import PROGRESS_STATES
from .pki.keys import KEY_TYPES
from .pki.profiles import CERTIFICATE_TYPES
from .roles import is_pki_administrator
from .services.issuance import issuance_in_background

SHOWN_FAILURES = 500  # on the batch's page; the API lists them all


class BatchStartForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text=f"Columns {', '.join(REQUIRED_COLUMNS)}; optionally username, department, key_type, "
        'certificate_type. A header row, UTF-8 (Excel: "CSV UTF-8"), at most 1 MiB.',
    )
    key_type = forms.ChoiceField(choices=list(KEY_TYPES.items()), initial="rsa-3072", help_text="For rows without one.")
    certificate_type = forms.ChoiceField(
        choices=list(CERTIFICATE_TYPES.items()), initial="sponsor-strict", help_text="For rows without one."
    )


def can_start_batch(user) -> bool:
    return user.is_active and is_pki_administrator(user) and user.has_perm("enrollment.add_employee")


@admin.register(EnrollmentBatch)
class EnrollmentBatchAdmin(ReadOnlyAdmin):
    list_display = ["batch_column", "started_by", "started_at", "source", "counts_column", "progress_column"]
    list_filter = ["source_kind", "via", "approved_by_policy", ("started_at", admin.DateFieldListFilter)]
    list_select_related = ["started_by"]
    date_hierarchy = "started_at"
    fields = [
        "started_by",
        "started_at",
        "finished_at",
        "source_kind",
        "source",
        "via",
        "key_type",
        "certificate_type",
        "approved_by_policy",
        "rows",
        "created",
        "employees_created",
        "skipped",
        "failed",
        "progress_column",
        "failures_table",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).with_progress()

    def has_view_permission(self, request, obj=None):
        # Batches summarize requests: who sees every request sees them.
        return request.user.has_perm("enrollment.view_certificaterequest") or super().has_view_permission(request, obj)

    def has_module_permission(self, request):
        return self.has_view_permission(request) or super().has_module_permission(request)

    def get_urls(self):
        return [
            path("start/", self.admin_site.admin_view(self.start_view), name="enrollment_enrollmentbatch_start"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_start_batch": can_start_batch(request.user)}
        return super().changelist_view(request, extra_context)

    @admin.display(description="batch", ordering="started_at")
    def batch_column(self, obj):
        running = "" if obj.finished_at else " (not finished)"
        return format_html('#{}{}<br><span class="quiet">{}</span>', obj.pk, running, obj.get_via_display())

    @admin.display(description="rows")
    def counts_column(self, obj):
        return format_html(
            "{} created, {} skipped, {} failed{}",
            obj.created,
            obj.skipped,
            obj.failed,
            " (approved by policy)" if obj.approved_by_policy else "",
        )

    @admin.display(description="progress of its requests")
    def progress_column(self, obj):
        progress = obj.progress()
        total = sum(progress.values())
        if not total:
            return "no requests"
        done = progress["issued"] + progress["failed"] + progress["rejected"]
        parts = format_html_join(
            ", ", "{} {}", ((progress[state], state) for state in PROGRESS_STATES if progress[state])
        )
        return format_html('<progress max="{}" value="{}">{} of {}</progress> {}', total, done, done, total, parts)

    @admin.display(description="failed rows")
    def failures_table(self, obj):
        failures = obj.failures or []
        if not failures:
            return "none"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (item["where"], item["mail"] or item["username"], item["field"], item["reason"])
                for item in failures[:SHOWN_FAILURES]
            ),
        )
        more = len(failures) - SHOWN_FAILURES
        return format_html(
            '<table class="batch-failures"><thead><tr><th>where</th><th>who</th><th>field</th><th>reason</th></tr>'
            "</thead><tbody>{}</tbody></table>{}",
            rows,
            format_html("<p>… and {} more (the API lists every one).</p>", more) if more > 0 else "",
        )

    def start_view(self, request):
        if not can_start_batch(request.user):
            raise PermissionDenied
        form = BatchStartForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                rows = bulk_file_read(upload.read(), name=upload.name)
                outcome = enrollment_batch_run(
                    actor=request.user,
                    rows=rows,
                    source=upload.name,
                    via=EnrollmentBatch.Via.ADMIN,
                    key_type=form.cleaned_data["key_type"],
                    certificate_type=form.cleaned_data["certificate_type"],
                    in_process_issuance_limit=WEB_ISSUANCE_LIMIT,
                )
            except BulkFileRefused as exc:
                form.add_error("file", str(exc))
            except (PortalError, ValidationError) as exc:
                form.add_error(None, error_message(exc))
            else:
                batch = outcome.batch
                next_step = "approved by policy" if batch.approved_by_policy else "waiting for an approver"
                self.message_user(
                    request,
                    f"Batch #{batch.pk}: {batch.created} requests filed ({next_step}), {batch.skipped} skipped as "
                    f"already enrolled, {batch.failed} failed.",
                    messages.WARNING if batch.failed else messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:enrollment_enrollmentbatch_change", args=[batch.pk]))
        return TemplateResponse(
            request,
            "admin/enrollment/enrollmentbatch/start.html",
            {
                **self.admin_site.each_context(request),
                "title": "Start an enrollment batch",
                "opts": self.opts,
                "form": form,
                "auto_approve": enrollment_auto_approve_applies(actor=request.user),
                "auto_approve_setting": bool(settings.PORTAL_ENROLLMENT_AUTO_APPROVE),
                "workers": issuance_in_background(),
                "web_issuance_limit": WEB_ISSUANCE_LIMIT,
            },
        )
