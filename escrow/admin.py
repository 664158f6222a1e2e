from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
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
                self.message_user(request, f"Deactivated {agent.name}. Run rewrap_escrow.", messages.SUCCESS)
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


class DecisionCommentForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, required=False)


class RejectCommentForm(forms.Form):
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, help_text="Why the recovery is rejected."
    )


class WithdrawForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, help_text="Why the recovery is withdrawn."
    )


def _who_receives(obj: RecoveryRequest) -> str:
    """What an approver must see before deciding: whose keys go to whom, and why."""
    owner = obj.employee.user.get_username()
    recipient = obj.recipient.get_username()
    to = "the owner themselves" if obj.recipient_id == obj.employee.user_id else recipient
    return f"keys of {owner} go to {to} ({obj.get_purpose_display()}; requested by {obj.requested_by.get_username()})"


class CompleteRecoveryForm(forms.Form):
    agent_pkcs12 = forms.FileField(
        label="Agent PKCS#12",
        help_text="Your key recovery agent file (.p12). It is used in memory for this request only and not stored.",
    )
    passphrase = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "off"}), strip=False)


class RequestRecoveryForm(forms.Form):
    certificate = forms.CharField(required=False, help_text="The certificate's serial (hex), or leave empty and name an employee.")
    employee = forms.CharField(required=False, help_text="Username: recovers all of the employee's escrowed keys.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    purpose = forms.ChoiceField(choices=[("", "(by your role)"), *RecoveryRequest.Purpose.choices], required=False)
    recipient = forms.CharField(
        required=False, help_text="Username of who receives the keys (default: the owner; for legal hold: you)."
    )


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
                result = decide(request_id=pk)
            except (PortalError, ValidationError) as exc:
                self.message_user(request, f"Recovery #{pk} not {verb}: {error_message(exc, separator='; ')}", messages.ERROR)
            else:
                self.message_user(request, f"Recovery #{pk} {verb}; it is now {result.status}.", messages.SUCCESS)

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
            button="Approve", form=form, describe=_who_receives,
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
            button="Reject", form=form, describe=_who_receives,
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
            button="Withdraw", form=form, describe=_who_receives,
        )

    # --- custom pages: request (add) and complete --------------------------------------
    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
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

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = RequestRecoveryForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                created = recovery_request_create(
                    requested_by=request.user, reason=data["reason"], serial=data["certificate"],
                    employee_username=data["employee"], recipient_username=data["recipient"], purpose=data["purpose"],
                )
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
                    request, f"Recovery request #{created.pk} made; it needs {created.required_approvals} approvals.",
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
            },
        )

    @method_decorator(sensitive_post_parameters("passphrase"))
    def complete_view(self, request, object_id):
        if not self.has_complete_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, object_id)
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        form = CompleteRecoveryForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["agent_pkcs12"]
            try:
                completed = recovery_request_complete(
                    request_id=obj.pk, agent=request.user, agent_pkcs12=upload.read(),
                    passphrase=form.cleaned_data["passphrase"],
                )
            except ValidationError as exc:
                form.add_error("agent_pkcs12" if "agent_pkcs12" in getattr(exc, "error_dict", {}) else None, exc.messages)
            except PortalError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request,
                    f"Recovery #{completed.pk} completed: {completed.pickups.count()} key(s) wait for "
                    f"{completed.recipient.get_username()} on the self-service page.",
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:escrow_recoveryrequest_change", args=[obj.pk]))
        return TemplateResponse(
            request,
            "admin/escrow/recoveryrequest/complete.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Complete recovery #{obj.pk}",
                "opts": self.opts,
                "original": obj,
                "form": form,
            },
        )
