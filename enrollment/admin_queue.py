"""The approver's queue: pending requests by default, Approve / Reject on each row and on the
request's page, separation of duties said before anyone tries, one summary line per bulk action.

Every decision goes through certificate_request_approve / certificate_request_reject (which
check the permission and separation of duties again); the admin only asks the same
selector first (selectors.request_duty_conflict), so what it shows and what the service
decides cannot disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core.admin_tools import FilterLookupsOnlyChangeList, action_confirmation
from core.exceptions import PortalError, error_message
from enrollment.services.issuance import issuance_in_background
from enrollment.services.requests import certificate_request_approve, certificate_request_reject

from .models import CertificateRequest
from .selectors import issuance_progress, request_duty_conflict, requests_pending

PENDING = CertificateRequest.State.PENDING
ALL_STATES = "all"


class RejectForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="Recorded in the audit log and sent to the employee.",
    )


class PendingByDefaultStateFilter(admin.ChoicesFieldListFilter):
    """The state filter, on "pending" until the approver chooses: "All" is `?state__exact=all`.

    A plain `?state=…` (a link from elsewhere, FilterLookupsOnlyChangeList allows it) is a
    choice too, so the default never narrows it to nothing.
    """

    def __init__(self, field, request, params, model, model_admin, field_path):
        self.chosen = any(key == field_path or key.startswith(f"{field_path}__") for key in params)
        super().__init__(field, request, params, model, model_admin, field_path)
        if not self.chosen:
            self.lookup_val = [PENDING]
            self.used_parameters = {self.lookup_kwarg: [PENDING]}
        elif self.lookup_val == [ALL_STATES]:
            self.used_parameters = {}

    def choices(self, changelist):
        choices = list(super().choices(changelist))
        choices[0] = {
            "selected": self.lookup_val == [ALL_STATES] or (self.chosen and self.lookup_val is None),
            "query_string": changelist.get_query_string({self.lookup_kwarg: ALL_STATES}, [self.lookup_kwarg_isnull]),
            "display": "All",
        }
        return choices


class QueueChangeList(FilterLookupsOnlyChangeList):
    """ "Clear all filters" shows every request: without a state the list would be the queue again."""

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        self.clear_all_filters_qs = self.get_query_string(
            {"state__exact": ALL_STATES}, remove=self.get_filters_params()
        )
        return queryset


def showing_pending(request) -> bool:
    """Whether the changelist shows the queue (the default, or the pending filter chosen)."""
    chosen = [key for key in request.GET if key == "state" or key.startswith("state__")]
    return not chosen or request.GET.get("state__exact") == PENDING or request.GET.get("state") == PENDING


@dataclass
class Outcome:
    """What a bulk decision did, request by request, for its one summary line."""

    done: list[tuple[int, str]] = field(default_factory=list)  # (pk, serial or "")
    failed: list[tuple[int, str]] = field(default_factory=list)  # approved, but issuance failed: (pk, why)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (pk, why)

    @staticmethod
    def listed(items) -> str:
        # "#5 (it is your own request …)": the request's number once, not again in its reason.
        return ", ".join(
            f"#{pk} ({re.sub(rf'^You cannot decide request #{pk}: ', '', why).rstrip('.')})" for pk, why in items
        )

    def level(self) -> int:
        if not (self.failed or self.refused):
            return messages.SUCCESS
        return messages.WARNING if self.done else messages.ERROR


def _count(n: int) -> str:
    return f"{n} request" if n == 1 else f"{n} requests"


def approval_summary(outcome: Outcome, *, background: bool) -> str:
    items = [*outcome.done, *outcome.failed, *outcome.refused]
    if len(items) == 1:  # one request: say exactly what happened to it
        pk = items[0][0]
        if outcome.done:
            serial = outcome.done[0][1]
            return f"Request #{pk} approved; " + (
                "issuing in the background." if background else f"certificate {serial} issued."
            )
        if outcome.failed:
            return f"Request #{pk} approved but issuance failed: {outcome.failed[0][1]}"
        return f"Request #{pk} not approved: {outcome.refused[0][1]}"
    parts = []
    if outcome.done:
        parts.append(
            f"{_count(len(outcome.done))} approved; "
            + ("issuing in the background (the queue shows how far)" if background else "certificates issued")
        )
    if outcome.failed:
        parts.append(f"{len(outcome.failed)} approved but not issued: {Outcome.listed(outcome.failed)}")
    if outcome.refused:
        parts.append(f"{len(outcome.refused)} could not be approved: {Outcome.listed(outcome.refused)}")
    return "; ".join(parts) + "."


def rejection_summary(outcome: Outcome) -> str:
    if len(outcome.done) + len(outcome.refused) == 1:
        pk = (outcome.done or outcome.refused)[0][0]
        return f"Request #{pk} rejected." if outcome.done else f"Request #{pk} not rejected: {outcome.refused[0][1]}"
    parts = [f"{_count(len(outcome.done))} rejected"] if outcome.done else []
    if outcome.refused:
        parts.append(f"{len(outcome.refused)} could not be rejected: {Outcome.listed(outcome.refused)}")
    return "; ".join(parts) + "."


def approve_each(pks, *, approver) -> Outcome:
    """Approve one request after the other (each in its own transactions, as the service does)."""
    outcome = Outcome()
    for pk in pks:
        try:
            result = certificate_request_approve(request_id=pk, approver=approver)
        except (PortalError, ValidationError) as exc:
            outcome.refused.append((pk, error_message(exc, separator="; ")))
            continue
        if result.state == CertificateRequest.State.FAILED:
            outcome.failed.append((pk, result.reason))
        else:  # issued, or approved and issuing on a worker (issuance_in_background)
            certificate = result.certificates.order_by("-pk").first()
            outcome.done.append((pk, certificate.serial if certificate else ""))
    return outcome


def reject_each(pks, *, approver, reason: str) -> Outcome:
    outcome = Outcome()
    for pk in pks:
        try:
            certificate_request_reject(request_id=pk, approver=approver, reason=reason)
        except (PortalError, ValidationError) as exc:
            outcome.refused.append((pk, error_message(exc, separator="; ")))
        else:
            outcome.done.append((pk, ""))
    return outcome


class ApprovalQueueMixin:
    """For CertificateRequestAdmin: the queue's columns, actions, buttons and the two decision pages."""

    def has_approve_permission(self, request):
        return request.user.has_perm("enrollment.approve_certificaterequest")

    # --- the changelist: compact columns, a decision column for approvers -----------------

    def get_list_display(self, request):
        """The "decision" column of an approver: a function per request (the admin is shared by all)."""
        columns = list(super().get_list_display(request))
        if self.has_approve_permission(request) and "decision" in columns:
            columns[columns.index("decision")] = self._decision_column(request)
        return columns

    def get_ordering(self, request):
        # A queue: the oldest request first. Every other view: the newest first (the model's order).
        return ["created_at", "pk"] if showing_pending(request) else super().get_ordering(request)

    def get_changelist(self, request, **kwargs):
        return QueueChangeList

    @admin.display(description="decision")
    def decision(self, obj):
        """Who decided and why; for a pending request (without the permission to decide): that it waits."""
        if obj.state == PENDING:
            return mark_safe('<span class="quiet">waiting for an approver</span>')  # a constant
        reason = (obj.reason[:60] + "…") if len(obj.reason) > 60 else obj.reason
        who = obj.decided_by.get_username() if obj.decided_by_id else "policy"
        when = f"{obj.decided_at:%Y-%m-%d}" if obj.decided_at else ""
        return format_html('{} {}<br><span class="quiet">{}</span>', who, when, reason)

    def _decision_column(self, request):
        """The buttons of one row for this user, or why separation of duties keeps them from deciding it."""
        preserved = self.get_preserved_filters(request)
        suffix = f"?{preserved}" if preserved else ""

        @admin.display(description="decision")
        def decision(obj):
            if obj.state != PENDING:
                return self.decision(obj)
            if conflict := request_duty_conflict(request=obj, user=request.user):
                return format_html('<span class="duty-conflict">You cannot approve this: {}.</span>', conflict)
            return format_html(
                '<button type="submit" class="button approve-button" formaction="{}{}" data-busy '
                'aria-label="Approve request #{}">Approve</button> '
                '<a class="button reject-button" href="{}{}" aria-label="Reject request #{}…">Reject…</a>',
                self._decision_url("approve", obj.pk),
                suffix,
                obj.pk,
                self._decision_url("reject", obj.pk),
                suffix,
                obj.pk,
            )

        return decision

    def changelist_view(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        queue_title = showing_pending(request) and "title" not in extra_context
        if request.method == "GET":
            progress = issuance_progress()  # bulk approvals issued by workers: how far they are
            extra_context["issuance_progress"] = progress if progress.active else None
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if queue_title and context is not None:  # set before the (lazy) render
            changelist = context.get("cl")
            # The plain queue's count is the paginator's already: not a second COUNT of the pending rows.
            plain = changelist is not None and not changelist.query and not changelist.filter_refused and (
                set(changelist.get_filters_params()) <= {"state", "state__exact"}
            )
            count = changelist.result_count if plain else requests_pending().count()
            context["title"] = f"Approval queue: {_count(count)} waiting for approval"
        return response

    # --- who asks: the employee's directory details, their other certificates and requests ---

    @admin.display(description="directory details")
    def employee_details(self, obj):
        employee, user = obj.employee, obj.employee.user
        rows = [
            ("name", employee.display_name),
            ("mail", employee.mail),
            ("department", employee.department or "-"),
            ("directory entry", employee.directory_dn or "- (found by mail under the directory's base DN)"),
            ("account", f"{user.get_username()}{'' if user.is_active else ' (deactivated)'}"),
            ("submitted by", "the employee" if obj.submitted_by_id == user.pk else obj.submitted_by.get_username()),
        ]
        return format_html(
            '<dl class="employee-details">{}</dl>',
            format_html_join("", "<dt>{}</dt><dd>{}</dd>", rows),
        )

    @admin.display(description="their certificates")
    def employee_certificates(self, obj):
        rows = [
            (reverse("admin:enrollment_certificate_change", args=[c.pk]), c.serial, c.status, f"{c.not_after:%Y-%m-%d}")
            for c in obj.employee.certificates.order_by("-not_after")[:20]
        ]
        return format_html_join("", '<div><a href="{}">{}</a> {}, until {}</div>', rows) or "none"

    @admin.display(description="their other requests")
    def employee_requests(self, obj):
        others = obj.employee.requests.exclude(pk=obj.pk).order_by("-created_at")[:20]
        rows = [
            (
                reverse("admin:enrollment_certificaterequest_change", args=[r.pk]),
                r.pk,
                r.state,
                f"{r.created_at:%Y-%m-%d}",
            )
            for r in others
        ]
        return format_html_join("", '<div><a href="{}">#{}</a> {}, {}</div>', rows) or "none"

    # --- the bulk actions: one summary line each -------------------------------------------

    @admin.action(description="Approve selected requests (issues the certificates)", permissions=["approve"])
    def approve_selected(self, request, queryset):
        # With a broker each approval only records the decision and workers issue; without one
        # the certificates are issued here, one after the other (the Go button shows it is busy).
        background = issuance_in_background()
        outcome = approve_each(queryset.order_by("pk").values_list("pk", flat=True), approver=request.user)
        self.message_user(request, approval_summary(outcome, background=background), outcome.level())

    @admin.action(description="Reject selected requests…", permissions=["approve"])
    def reject_selected(self, request, queryset):
        form = RejectForm(request.POST if "confirm" in request.POST else None)
        if "confirm" in request.POST and form.is_valid():
            pks = queryset.order_by("pk").values_list("pk", flat=True)
            outcome = reject_each(pks, approver=request.user, reason=form.cleaned_data["reason"])
            self.message_user(request, rejection_summary(outcome), outcome.level())
            return None
        return action_confirmation(
            self,
            request,
            queryset,
            form=form,
            title="Reject certificate requests",
            question="Reject these requests? The reason is recorded and shown to the employee.",
            action="reject_selected",
            button="Reject",
        )

    # --- the request's page and the two decision pages --------------------------------------

    def _decision_url(self, kind: str, pk) -> str:
        return reverse(f"admin:enrollment_certificaterequest_{kind}", args=[pk], current_app=self.admin_site.name)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/approve/", view(self.approve_view), name="enrollment_certificaterequest_approve"),
            path("<path:object_id>/reject/", view(self.reject_view), name="enrollment_certificaterequest_reject"),
            *super().get_urls(),
        ]

    def decision_context(self, request, obj) -> dict | None:
        """What the request's page offers this user: None (nothing to decide), the refusal, or the buttons."""
        if obj is None or obj.state != PENDING or not self.has_approve_permission(request):
            return None
        conflict = request_duty_conflict(request=obj, user=request.user)
        return {
            "conflict": conflict,
            "refusal": f"You cannot approve this: {conflict} (separation of duties)." if conflict else "",
            "approve_url": self._decision_url("approve", obj.pk),
            "reject_url": self._decision_url("reject", obj.pk),
        }

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra_context = {**(extra_context or {}), "decision": self.decision_context(request, obj)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _decision_target(self, request, object_id) -> CertificateRequest:
        if not self.has_approve_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404(f"There is no request #{object_id}.")
        return obj

    def _back(self, request) -> HttpResponseRedirect:
        """To the queue, as the approver left it (its filters): the next request to decide."""
        filters = QueryDict(request.GET.get("_changelist_filters", "")).urlencode()  # re-encoded: only a query
        url = reverse("admin:enrollment_certificaterequest_changelist", current_app=self.admin_site.name)
        return HttpResponseRedirect(f"{url}?{filters}" if filters else url)

    def _decision_page(self, request, obj, *, template: str, title: str, **context):
        return TemplateResponse(
            request,
            f"admin/enrollment/certificaterequest/{template}",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "opts": self.opts,
                "original": obj,
                "decision": self.decision_context(request, obj),
                "preserved_filters": self.get_preserved_filters(request),
                "changelist_query": QueryDict(request.GET.get("_changelist_filters", "")).urlencode(),
                **context,
            },
        )

    def approve_view(self, request, object_id):
        obj = self._decision_target(request, object_id)
        if request.method != "POST":
            return self._decision_page(request, obj, template="approve.html", title=f"Approve request #{obj.pk}")
        background = issuance_in_background()
        outcome = approve_each([obj.pk], approver=request.user)
        self.message_user(request, approval_summary(outcome, background=background), outcome.level())
        return self._back(request)

    def reject_view(self, request, object_id):
        obj = self._decision_target(request, object_id)
        form = RejectForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            outcome = reject_each([obj.pk], approver=request.user, reason=form.cleaned_data["reason"])
            self.message_user(request, rejection_summary(outcome), outcome.level())
            if outcome.refused:
                return HttpResponseRedirect(reverse("admin:enrollment_certificaterequest_change", args=[obj.pk]))
            return self._back(request)
        return self._decision_page(request, obj, template="reject.html", title=f"Reject request #{obj.pk}", form=form)
