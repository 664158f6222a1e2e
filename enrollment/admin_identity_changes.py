"""Identity change requests in the admin: a PKI administrator asks ("Add", or the employee form), a
second person (another PKI administrator or an approver) confirms or rejects with the actions.

Every page says who may decide before anyone tries; the services decide again.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q

from core.admin_tools import FilterLookupsOnlyAdmin, action_confirmation
from core.exceptions import PortalError, error_message

from .models import Employee, IdentityChangeRequest
from .roles import APPROVERS, is_pki_administrator
from .services.employees import IDENTITY_LABELS
from .services.identity_changes import (
    identity_change_refusal,
    identity_change_request_confirm,
    identity_change_request_create,
    identity_change_request_reject,
    identity_change_request_withdraw,
    identity_change_revocations,
)

SECOND_PERSON_RULE = (
    "Confirmed or rejected by a second person: another PKI administrator or an approver, never the one who "
    "asked and never the employee. Confirming applies the change and revokes the certificates that name the old "
    "mailbox or name (affiliationChanged); rejecting changes nothing."
)


def changes_text(request: IdentityChangeRequest) -> str:
    return "; ".join(
        f"{IDENTITY_LABELS.get(name, name)}: {change['old'] or '-'} → {change['new'] or '-'}"
        for name, change in sorted(request.changes.items())
    )


class IdentityChangeRequestForm(forms.ModelForm):
    """Ask for an identity change: the service call is the form's validation (as for employees)."""

    employee_ref = forms.CharField(label="Employee", max_length=254, help_text="Their mailbox or username.")
    mail = forms.EmailField(label="New mailbox", required=False, help_text="Empty: unchanged.")
    given_name = forms.CharField(label="New given name", max_length=64, required=False, help_text="Empty: unchanged.")
    surname = forms.CharField(label="New surname", max_length=64, required=False, help_text="Empty: unchanged.")
    directory_dn = forms.CharField(label="New directory DN", max_length=500, required=False, help_text="Empty: unchanged.")
    actor = None

    class Meta:
        model = IdentityChangeRequest
        fields = ["reason"]

    def _post_clean(self):
        if self._errors:
            return
        ref = self.cleaned_data["employee_ref"].strip()
        employee = Employee.objects.filter(Q(mail=ref.lower()) | Q(user__username=ref)).first()
        if employee is None:
            self.add_error("employee_ref", "There is no employee with this mailbox or username.")
            return
        changes = {name: self.cleaned_data[name] for name in IDENTITY_LABELS if self.cleaned_data.get(name)}
        try:
            self.instance = identity_change_request_create(
                employee=employee, actor=self.actor, reason=self.cleaned_data["reason"], **changes
            )
        except (PortalError, ValidationError) as exc:
            if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
                for name, errors in exc.error_dict.items():
                    self.add_error(name if name in self.fields else None, errors)
            else:
                self.add_error(None, error_message(exc))


class CommentForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


class OptionalCommentForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, required=False)


def _may_decide(user) -> bool:
    return user.is_active and (is_pki_administrator(user) or user.groups.filter(name=APPROVERS).exists())


@admin.register(IdentityChangeRequest)
class IdentityChangeRequestAdmin(FilterLookupsOnlyAdmin):
    list_display = [
        "id", "employee", "change", "state", "requester", "created_at", "expires_at", "decided_by", "decided_at",
        "revoked",
    ]
    list_filter = ["state", "source"]
    search_fields = ["employee__mail", "employee__user__username", "requested_by__username"]
    list_select_related = ["employee__user", "requested_by", "decided_by"]
    actions = ["confirm_selected", "reject_selected", "withdraw_selected"]
    readonly = [*list_display, "reason", "comment", "who_decides"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = IdentityChangeRequestForm
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = request.user
        return form

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["employee_ref", *IDENTITY_LABELS, "reason"]
        return self.readonly

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly

    def save_model(self, request, obj, form, change):
        pass  # saved by the service while the form was validated

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(
            request,
            f"Identity change #{obj.pk} of {obj.employee.mail} waits for a second person. {SECOND_PERSON_RULE}",
            messages.SUCCESS,
        )
        return self.response_post_save_add(request, obj)

    def has_add_permission(self, request):
        return request.user.is_active and is_pki_administrator(request.user)

    def has_view_permission(self, request, obj=None):
        return _may_decide(request.user) or request.user.has_perm("enrollment.view_identitychangerequest")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_decide_permission(self, request):
        return _may_decide(request.user)

    def has_withdraw_permission(self, request):
        return self.has_add_permission(request)

    @admin.display(description="change")
    def change(self, obj):
        return changes_text(obj)

    @admin.display(description="asked for by")
    def requester(self, obj):
        return obj.requested_by.get_username() if obj.requested_by_id else f"the {obj.source}"

    @admin.display(description="revoked")
    def revoked(self, obj):
        return ", ".join(obj.revoked_serials) or "-"

    @admin.display(description="who decides")
    def who_decides(self, obj):
        return SECOND_PERSON_RULE

    def _describe(self, request):
        def describe(obj):
            refusal = identity_change_refusal(request=obj, actor=request.user)
            if obj.state != IdentityChangeRequest.State.PENDING:
                return f"{obj.get_state_display()} already: nothing to decide."
            if refusal is not None:
                return f"You cannot decide this one: {refusal.message}"
            serials = identity_change_revocations(request=obj)
            return f"{changes_text(obj)}. Confirming revokes: {', '.join(serials) or 'no certificate'}."

        return describe

    def _decide(self, request, queryset, *, decide, verb: str, form):
        for pending in queryset.select_related("employee").order_by("pk"):
            try:
                done = decide(pending, form.cleaned_data["comment"])
            except (PortalError, ValidationError) as exc:
                self.message_user(
                    request, f"Identity change #{pending.pk} not {verb}: {error_message(exc, separator='; ')}",
                    messages.ERROR,
                )
            else:
                revoked = f"; revoked {', '.join(done.revoked_serials)}" if done.revoked_serials else ""
                self.message_user(
                    request, f"Identity change #{done.pk} of {pending.employee.mail} {verb}{revoked}.", messages.SUCCESS
                )

    @admin.action(description="Confirm the selected identity changes (as the second person)…", permissions=["decide"])
    def confirm_selected(self, request, queryset):
        form = OptionalCommentForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if form.is_bound and form.is_valid():
            return self._decide(
                request, queryset, verb="confirmed", form=form,
                decide=lambda obj, comment: identity_change_request_confirm(
                    request_id=obj.pk, actor=request.user, comment=comment
                ),
            )
        return action_confirmation(
            self, request, queryset, form=form, title="Confirm identity changes",
            question=f"Apply these identity changes? {SECOND_PERSON_RULE}",
            action="confirm_selected", button="Confirm and revoke", describe=self._describe(request),
        )

    @admin.action(description="Reject the selected identity changes…", permissions=["decide"])
    def reject_selected(self, request, queryset):
        form = CommentForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if form.is_bound and form.is_valid():
            return self._decide(
                request, queryset, verb="rejected", form=form,
                decide=lambda obj, comment: identity_change_request_reject(
                    request_id=obj.pk, actor=request.user, comment=comment
                ),
            )
        return action_confirmation(
            self, request, queryset, form=form, title="Reject identity changes",
            question=f"Reject these identity changes? Nothing changes; the certificates stay valid. {SECOND_PERSON_RULE}",
            action="reject_selected", button="Reject", describe=self._describe(request),
        )

    @admin.action(description="Withdraw the selected identity changes (your own requests)", permissions=["withdraw"])
    def withdraw_selected(self, request, queryset):
        for pending in queryset.select_related("employee").order_by("pk"):
            try:
                identity_change_request_withdraw(request_id=pending.pk, actor=request.user)
            except (PortalError, ValidationError) as exc:
                self.message_user(request, f"Identity change #{pending.pk} not withdrawn: {error_message(exc)}", messages.ERROR)
            else:
                self.message_user(request, f"Identity change #{pending.pk} withdrawn.", messages.SUCCESS)
