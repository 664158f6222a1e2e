from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html_join
from django.views.decorators.debug import sensitive_post_parameters

from core.admin_tools import FilterLookupsOnlyAdmin, ReadOnlyAdmin, action_confirmation
from core.exceptions import PortalError, error_message
from escrow.services.agents import key_recovery_agent_deactivate
from escrow.services.recovery import (
    recovery_request_approve,
    recovery_request_complete,
    recovery_request_create,
    recovery_request_reject,
)
from escrow.services.recovery_close import recovery_request_withdraw

from . import cms
from .admin_forms import (
    CompleteRecoveryForm,
    DecisionCommentForm,
    RejectCommentForm,
    RequestRecoveryForm,
    WithdrawForm,
    pickers_search,
)
from .admin_messages import completion_message, decision_outcome, who_receives
from .admin_uploads import KEEP_MINUTES, agent_upload_forget, agent_upload_keep, agent_upload_open
from .models import EscrowRecord, KeyRecoveryAgent, RecoveryDecision, RecoveryRequest


@admin.register(KeyRecoveryAgent)
class KeyRecoveryAgentAdmin(FilterLookupsOnlyAdmin):
    list_display = ["name", "user", "is_active", "fingerprint_sha256", "created_at"]
    list_filter = ["is_active"]
    fields = ["name", "user", "is_active", "fingerprint_sha256", "subject", "not_after", "created_at"]
    # Deactivation goes through the action (service + audit event), never through the form.
    readonly_fields = fields
    actions = ["deactivate_selected"]

    def has_add_permission(self, request):
        return False  # agents are created with `manage.py create_kra`, which hands out the key

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="certificate subject")
    def subject(self, obj):
        return obj.certificate.subject.rfc4514_string()

    @admin.display(description="certificate expires")
    def not_after(self, obj):
        return obj.certificate.not_valid_after_utc

    @admin.action(description="Deactivate selected agents…", permissions=["change"])
    def deactivate_selected(self, request, queryset):
        if request.POST.get("confirm") != "yes":
            return action_confirmation(
                self, request, queryset, action="deactivate_selected", title="Deactivate key recovery agents",
                question="Deactivate these agents? New escrow is no longer encrypted to them; existing escrow "
                "records stay decryptable by them until `manage.py rewrap_escrow` re-encrypts them.",
                button="Deactivate", form=None,
            )
        for agent in queryset.order_by("pk"):
            try:
                key_recovery_agent_deactivate(agent_id=agent.pk, actor=request.user)
            except PortalError as exc:
                self.message_user(request, f"Could not deactivate {agent.name}: {exc.message}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"Deactivated {agent.name}: new escrow is no longer encrypted to it; what was encrypted to it "
                    "stays decryptable by it until `manage.py rewrap_escrow` re-encrypts it.",
                    messages.SUCCESS,
                )
        return None


@admin.register(EscrowRecord)
class EscrowRecordAdmin(ReadOnlyAdmin):
    list_display = ["certificate", "created_at", "agent_names"]
    search_fields = ["certificate__serial", "certificate__mailbox"]
    exclude = ["envelope_der"]
    readonly_fields = ["certificate", "created_at", "agent_names", "envelope_recipients", "envelope_size"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("certificate").prefetch_related("agents")

    @admin.display(description="agents who can decrypt it")
    def agent_names(self, obj):
        return ", ".join(agent.name for agent in obj.agents.all())

    @admin.display(description="recipients in the CMS envelope")
    def envelope_recipients(self, obj):
        """Read from the envelope itself (issuer and serial of each recipient), no decryption."""
        try:
            recipients = cms.envelope_recipient_serials(bytes(obj.envelope_der))
        except ValueError as exc:
            return f"unreadable envelope: {exc}"
        agents = {
            (agent.certificate.issuer.rfc4514_string(), agent.certificate.serial_number): agent.name
            for agent in KeyRecoveryAgent.objects.all()
        }
        return format_html_join(
            "", "<div>{} <small>(serial {}, issuer {})</small></div>",
            ((agents.get((issuer, serial), "unknown agent"), format(serial, "x"), issuer) for issuer, serial in recipients),
        )

    @admin.display(description="envelope size (bytes)")
    def envelope_size(self, obj):
        return len(obj.envelope_der)


class RecoveryDecisionInline(admin.TabularInline):
    model = RecoveryDecision
    fields = ["approver", "decision", "comment", "at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # The decisions are part of the request: whoever may read it reads them.
        return request.user.has_perm("escrow.view_recoveryrequest")


@admin.register(RecoveryRequest)
class RecoveryRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "id", "employee", "certificate", "purpose", "status", "approvals_display", "requested_by", "recipient",
        "created_at", "completed_by",
    ]
    list_filter = ["status", "purpose", ("created_at", admin.DateFieldListFilter)]
    search_fields = [
        "employee__mail", "employee__surname", "certificate__serial", "requested_by__username", "recipient__username",
    ]
    list_select_related = ["employee", "certificate", "requested_by", "recipient", "completed_by"]
    date_hierarchy = "created_at"
    fields = [
        "employee", "certificate", "purpose", "reason", "requested_by", "recipient", "status",
        "approvals_display", "created_at", "decided_at", "completed_at", "completed_by", "pickups_display",
    ]
    readonly_fields = fields
    inlines = [RecoveryDecisionInline]
    actions = ["approve_selected", "reject_selected", "withdraw_selected"]
    change_form_template = "admin/escrow/recoveryrequest/change_form.html"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                approvals=Count("decisions", filter=Q(decisions__decision=RecoveryDecision.Decision.APPROVE), distinct=True)
            )
            .order_by("-created_at", "-id")
        )

    @admin.display(description="approvals", ordering="approvals")
    def approvals_display(self, obj):
        return f"{obj.approvals} of {obj.required_approvals}"

    @admin.display(description="recovered keys")
    def pickups_display(self, obj):
        pickups = list(obj.pickups.select_related("certificate"))
        if not pickups:
            return "-"
        return format_html_join(
            "", "<div>{} <small>(download until {}, {} download(s))</small></div>",
            ((p.certificate.serial, f"{p.expires_at:%Y-%m-%d %H:%M}", p.download_count) for p in pickups),
        )

    # --- permissions -------------------------------------------------------------------
    def has_approve_permission(self, request):
        return request.user.has_perm("escrow.approve_recoveryrequest")

    def has_complete_permission(self, request):
        return request.user.has_perm("escrow.complete_recoveryrequest")

    def has_add_permission(self, request, obj=None):
        user = request.user
        return user.has_perm("escrow.request_recovery") or user.has_perm("escrow.request_legal_hold")

    # --- approve / reject --------------------------------------------------------------
    def _decide(self, request, queryset, *, decide, verb: str):
        for pk in queryset.order_by("pk").values_list("pk", flat=True):
            try:
                decide(request_id=pk)
            except (PortalError, ValidationError) as exc:
                self.message_user(request, f"Recovery #{pk} not {verb}: {error_message(exc, separator='; ')}", messages.ERROR)
            else:
                # Read back with its approvals counted (get_queryset), as the list shows it.
                decided = self.get_queryset(request).get(pk=pk)
                self.message_user(request, decision_outcome(decided, verb=verb), messages.SUCCESS)

    @admin.action(description="Approve selected recovery requests…", permissions=["approve"])
    def approve_selected(self, request, queryset):
        form = DecisionCommentForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if form.is_bound and form.is_valid():
            comment = form.cleaned_data["comment"]
            self._decide(
                request, queryset, verb="approved",
                decide=lambda request_id: recovery_request_approve(
                    request_id=request_id, approver=request.user, comment=comment
                ),
            )
            return None
        return action_confirmation(
            self, request, queryset, action="approve_selected", title="Approve key recovery requests",
            question="Approve these key recoveries? Once approved by enough approvers, a key recovery agent can "
            "decrypt the escrowed keys for the named recipient. Your approval and comment are recorded.",
            button="Approve", form=form, describe=who_receives,
        )

    @admin.action(description="Reject selected recovery requests…", permissions=["approve"])
    def reject_selected(self, request, queryset):
        form = RejectCommentForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if form.is_bound and form.is_valid():
            comment = form.cleaned_data["comment"]
            self._decide(
                request, queryset, verb="rejected",
                decide=lambda request_id: recovery_request_reject(
                    request_id=request_id, approver=request.user, comment=comment
                ),
            )
            return None
        return action_confirmation(
            self, request, queryset, action="reject_selected", title="Reject key recovery requests",
            question="Reject these key recoveries? One rejection ends a request; your comment is recorded.",
            button="Reject", form=form, describe=who_receives,
        )

    @admin.action(description="Withdraw selected recovery requests…", permissions=["approve"])
    def withdraw_selected(self, request, queryset):
        form = WithdrawForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            self._decide(
                request, queryset, verb="withdrawn",
                decide=lambda request_id: recovery_request_withdraw(request_id=request_id, actor=request.user, reason=reason),
            )
            return None
        return action_confirmation(
            self, request, queryset, action="withdraw_selected", title="Withdraw key recovery requests",
            question="Withdraw these key recoveries? A withdrawn request can no longer be approved or completed; "
            "your reason is recorded and the owner is told.",
            button="Withdraw", form=form, describe=who_receives,
        )

    # --- custom pages: request (add) and complete --------------------------------------
    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("pick/<str:kind>/", self.admin_site.admin_view(self.picker_view), name="%s_%s_picker" % info),
            path(
                "<path:object_id>/complete/",
                self.admin_site.admin_view(self.complete_view),
                name="%s_%s_complete" % info,
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_complete": self.has_complete_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def picker_view(self, request, kind):
        """The choices of the request form's searchable selects (select2's JSON), for those who may request."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        try:
            page = int(request.GET.get("page", "1")[:6])
        except ValueError:
            page = 1
        found = pickers_search(kind=kind, term=request.GET.get("term", ""), page=page)
        if found is None:
            raise Http404("No such picker.")
        return JsonResponse(found)

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = RequestRecoveryForm(request.POST or None, admin_site=self.admin_site)
        if request.method == "POST" and form.is_valid():
            try:
                created = recovery_request_create(requested_by=request.user, **form.service_arguments())
            except ValidationError as exc:
                if hasattr(exc, "error_dict"):
                    for field, errors in exc.message_dict.items():
                        form.add_error(field if field in form.fields else None, errors)
                else:
                    form.add_error(None, exc)
            except PortalError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request,
                    f"Recovery request #{created.pk} made; it waits for {created.required_approvals} approvals "
                    "(by approvers other than you, the owner and the recipient), then a key recovery agent completes it.",
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:escrow_recoveryrequest_change", args=[created.pk]))
        return TemplateResponse(
            request,
            "admin/escrow/recoveryrequest/request_form.html",
            {
                **self.admin_site.each_context(request),
                "title": "Request a key recovery",
                "opts": self.opts,
                "form": form,
                "media": self.media + form.media,
            },
        )

    @method_decorator(sensitive_post_parameters("passphrase", "kept_upload"))
    def complete_view(self, request, object_id):
        if not self.has_complete_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, object_id)
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        # The file of the last refused try, sealed in the session, its key in the page (escrow/admin_uploads.py).
        where = {"session": request.session, "user_id": request.user.pk, "recovery_id": obj.pk}
        kept_key = request.POST.get("kept_upload", "") if request.method == "POST" else ""
        kept_file = agent_upload_open(**where, key=kept_key) if kept_key else None
        if kept_file is None:
            agent_upload_forget(session=request.session)
        form = CompleteRecoveryForm(request.POST or None, request.FILES or None, file_kept=kept_file is not None)
        kept = None
        if request.method == "POST":
            valid = form.is_valid()
            upload = form.cleaned_data.get("agent_pkcs12")
            data, name = (upload.read(), upload.name) if upload else kept_file or (b"", "")
            keep = not valid
            if valid:
                try:
                    completed = recovery_request_complete(
                        request_id=obj.pk, agent=request.user, agent_pkcs12=data,
                        passphrase=form.cleaned_data["passphrase"],
                    )
                except ValidationError as exc:  # the file or its passphrase: worth another try
                    form.add_error("agent_pkcs12" if "agent_pkcs12" in getattr(exc, "error_dict", {}) else None, exc.messages)
                    keep = True
                except PortalError as exc:  # the request's state or who may: no passphrase cures it
                    form.add_error(None, exc.message)
                else:
                    agent_upload_forget(session=request.session)
                    self.message_user(request, completion_message(completed), messages.SUCCESS)
                    return redirect(reverse("admin:escrow_recoveryrequest_change", args=[obj.pk]))
            if keep and data:
                kept = agent_upload_keep(**where, data=data, name=name)
                if kept is not None:
                    form.file_kept()
            else:
                agent_upload_forget(session=request.session)
            if kept_key and kept_file is None and not upload:
                form.errors["agent_pkcs12"] = form.error_class(
                    [f"The file kept from your last try is gone (after {KEEP_MINUTES} minutes, or the page was reloaded): "
                     "choose it again."]
                )
        return TemplateResponse(
            request,
            "admin/escrow/recoveryrequest/complete.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Complete recovery #{obj.pk}",
                "opts": self.opts,
                "original": obj,
                "form": form,
                "kept": kept,
                "keep_minutes": KEEP_MINUTES,
            },
        )
