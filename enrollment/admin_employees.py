"""The employee admin: records created and changed only through the services; leavers offboarded,
accounts with a trusted role by two PKI administrators (a request, then the offboarding)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

from core.admin_tools import FilterLookupsOnlyAdmin, ReadOnlyAdmin, action_confirmation
from core.exceptions import PortalError, error_message

from .admin_directory_pick import DirectoryPickMixin
from .admin_on_behalf import RequestOnBehalfMixin
from .models import Certificate, Employee, OffboardingRequest, RoleGrantRequest
from .roles import is_pki_administrator
from .services.employees import (
    EMPLOYEE_FIELDS,
    employee_create,
    employee_offboard,
    offboarding_request_create,
)
from .services.identity_changes import employee_update_or_request, identity_change_revocations
from .services.role_grants import GRANTABLE_ROLES, role_grant_confirm, role_grant_request


class OffboardForm(forms.Form):
    acknowledge_consequences = forms.BooleanField(
        required=False,
        label="I accept the consequence for key recovery",
        help_text="Needed when the account is one of the last approvers that key recovery requires.",
    )


class OffboardingReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


class EmployeeServiceForm(forms.ModelForm):
    """An employee form whose model validation is the service call (employee_create / _update).

    The admin saves a form only once it is valid, and cannot show errors raised later: so the
    service runs in `_post_clean` (inside the admin's transaction for the POST), its refusals
    become form errors, and the saved record becomes the form's instance. `actor` is set per
    request by EmployeeAdmin.get_form.
    """

    actor = None

    class Meta:
        model = Employee
        fields = list(EMPLOYEE_FIELDS)
        help_texts = {
            "mail": "At a domain this CA certifies. While valid certificates bind it, a change becomes an "
            "identity change request that a second person confirms (the old certificates are then revoked).",
            "directory_dn": "The directory entry certificates are published to (bound like the mailbox).",
        }

    def _post_clean(self):
        if self._errors:
            return
        try:
            self.instance = self.call_service({name: self.cleaned_data.get(name, "") for name in EMPLOYEE_FIELDS})
        except (PortalError, ValidationError) as exc:
            if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
                for name, errors in exc.error_dict.items():
                    self.add_error(name if name in self.fields else None, errors)
            else:
                self.add_error(None, error_message(exc))

    def call_service(self, values: dict) -> Employee:
        raise NotImplementedError


class EmployeeAddForm(EmployeeServiceForm):
    """A person by name and mail; the account (a log-in name) is created, or linked only when typed."""

    username = forms.CharField(
        label="Log-in name",
        max_length=150,
        required=False,
        help_text="Empty: the part of the mailbox before the @, for a new account without a password (a "
        "directory log-in or an administrator gives it a way in later). To make an existing account without "
        "an employee record this person's, type its log-in name.",
    )

    def call_service(self, values: dict) -> Employee:
        username = self.cleaned_data.get("username", "").strip()
        if not username:
            # Never guess an existing account: someone else's log-in would get this mailbox.
            username = values["mail"].partition("@")[0].strip().lower()
            if get_user_model().objects.filter(username=username).exists():
                raise ValidationError(
                    {
                        "username": f"An account named {username} exists already: type its log-in "
                        "name here to link it (only if it is this person's), or choose another."
                    }
                )
        return employee_create(actor=self.actor, username=username, **values)


class EmployeeChangeForm(EmployeeServiceForm):
    """Unbound fields are saved at once (audited); a mailbox, name or DN that valid certificates bind
    becomes an identity change request (with the reason given here) that a second person confirms."""

    # No `user` field: the account of an employee record never changes (only shown, read-only).
    reason = forms.CharField(
        label="Reason for an identity change",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        help_text="Needed when valid certificates bind a changed mailbox, name or directory DN: the change then "
        "waits for another PKI administrator or an approver to confirm it, and the certificates naming the old "
        "value are revoked on confirmation.",
    )
    identity_change = None

    def call_service(self, values: dict) -> Employee:
        outcome = employee_update_or_request(
            employee=self.instance, actor=self.actor, reason=self.cleaned_data.get("reason", ""), **values
        )
        self.identity_change = outcome.request
        return outcome.employee


@admin.register(Employee)
class EmployeeAdmin(DirectoryPickMixin, RequestOnBehalfMixin, FilterLookupsOnlyAdmin):
    """Employees are created and changed through the services (audited, domain rule, certificates
    bind the identity); never deleted here: leavers are offboarded. The add page can fill its form
    in from a person found in the directory (admin_directory_pick.py)."""

    list_display = ["mail", "given_name", "surname", "department", "user", "is_active"]
    search_fields = ["mail", "given_name", "surname", "user__username", "department"]
    list_filter = ["department", "user__is_active"]
    list_select_related = ["user"]
    actions = [
        "offboard_selected",
        "request_offboarding_selected",
        "request_identity_change",
        "request_certificate_on_behalf",
    ]
    # The add form: the person first (names, mail, department), the log-in name last and optional.
    ADD_FIELDS = ["given_name", "surname", "mail", "department", "directory_dn", "username"]

    def get_fields(self, request, obj=None):
        return ["user", *EMPLOYEE_FIELDS, "reason", "valid_certificates"] if obj else list(self.ADD_FIELDS)

    def get_readonly_fields(self, request, obj=None):
        return ["user", "valid_certificates"] if obj else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = EmployeeChangeForm if obj is not None else EmployeeAddForm
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = request.user  # modelform_factory made this class for this request
        return form

    def save_model(self, request, obj, form, change):
        # Saved by the service while the form was validated (EmployeeServiceForm).
        if (pending := getattr(form, "identity_change", None)) is not None:
            fields = ", ".join(sorted(pending.changes))
            self.message_user(
                request,
                f"{fields} of {obj.mail} not changed yet: valid certificates bind it, so identity change "
                f"#{pending.pk} now waits for another PKI administrator or an approver (Identity change requests); "
                f"on confirmation {', '.join(identity_change_revocations(request=pending)) or 'no certificate'} will be revoked.",
                messages.WARNING,
            )

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(boolean=True, description="active")
    def is_active(self, obj):
        return obj.user.is_active

    @admin.display(description="valid certificates")
    def valid_certificates(self, obj):
        serials = (
            obj.certificates.filter(status=Certificate.Status.VALID).order_by("pk").values_list("serial", flat=True)
        )
        return ", ".join(serials) or "-"

    def has_offboard_permission(self, request):
        return request.user.has_perm("enrollment.revoke_certificate")

    @admin.action(description="Offboard selected employees (leavers)…", permissions=["offboard"])
    def offboard_selected(self, request, queryset):
        form = OffboardForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            accept = form.cleaned_data["acknowledge_consequences"]
            for employee in queryset.select_related("user").order_by("pk"):
                try:
                    revoked = employee_offboard(user=employee.user, actor=request.user, acknowledge_consequences=accept)
                except (PortalError, ValidationError) as exc:
                    self.message_user(
                        request,
                        f"Could not offboard {employee.mail}: {error_message(exc, separator='; ')}",
                        messages.ERROR,
                    )
                else:
                    self.message_user(
                        request,
                        f"Offboarded {employee.mail}: account deactivated, {len(revoked)} certificate(s) revoked; "
                        "escrowed keys are kept for recovery.",
                        messages.SUCCESS,
                    )
            return None
        return action_confirmation(
            self,
            request,
            queryset,
            form=form,
            title="Offboard employees",
            question="Offboard these employees? Their certificates are revoked (cessation of operation) and "
            "removed from the directory, pending requests are withdrawn and the accounts deactivated. "
            "Escrowed keys stay, so their mail can still be recovered.",
            action="offboard_selected",
            button="Offboard",
        )

    def has_request_identity_change_permission(self, request):
        return request.user.is_active and is_pki_administrator(request.user)

    @admin.action(
        description="Request identity change (second person confirms)…", permissions=["request_identity_change"]
    )
    def request_identity_change(self, request, queryset):
        """One employee at a time: the request's add page with the employee filled in."""
        if queryset.count() != 1:
            self.message_user(request, "Select one employee to request an identity change for.", messages.WARNING)
            return None
        url = reverse("admin:enrollment_identitychangerequest_add")
        return HttpResponseRedirect(f"{url}?{urlencode({'employee_ref': queryset.get().mail})}")

    def has_request_offboarding_permission(self, request):
        return request.user.is_active and is_pki_administrator(request.user)  # as the service decides

    @admin.action(description="Request offboarding of selected trusted accounts…", permissions=["request_offboarding"])
    def request_offboarding_selected(self, request, queryset):
        form = OffboardingReasonForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if form.is_bound and form.is_valid():
            for employee in queryset.select_related("user").order_by("pk"):
                try:
                    offboarding_request_create(
                        user=employee.user, actor=request.user, reason=form.cleaned_data["reason"]
                    )
                except (PortalError, ValidationError) as exc:
                    self.message_user(
                        request,
                        f"Offboarding of {employee.mail} not requested: {error_message(exc, separator='; ')}",
                        messages.ERROR,
                    )
                else:
                    self.message_user(
                        request,
                        f"Requested the offboarding of {employee.mail}; another PKI administrator confirms it "
                        'with "Offboard selected employees".',
                        messages.SUCCESS,
                    )
            return None
        return action_confirmation(
            self,
            request,
            queryset,
            form=form,
            title="Request offboarding of trusted accounts",
            question="These accounts hold a trusted role: offboarding them needs two PKI administrators. "
            "Record your request; a second PKI administrator then offboards them.",
            action="request_offboarding_selected",
            button="Request offboarding",
        )


@admin.register(OffboardingRequest)
class OffboardingRequestAdmin(ReadOnlyAdmin):
    list_display = ["user", "requested_by", "reason", "created_at", "confirmed_by", "confirmed_at"]
    list_filter = [("confirmed_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "requested_by__username"]
    list_select_related = ["user", "requested_by", "confirmed_by"]

    def has_view_permission(self, request, obj=None):
        # The PKI administrators who confirm offboarding requests see them (the role has no model permission).
        return (request.user.is_active and is_pki_administrator(request.user)) or super().has_view_permission(
            request, obj
        )


class RoleGrantRequestForm(forms.ModelForm):
    """Ask for a trusted role for someone: the service call is the form's validation (as for employees)."""

    username = forms.CharField(max_length=150, help_text="Who gets the role.")
    role = forms.ChoiceField(choices=[(role, role) for role in GRANTABLE_ROLES])
    actor = None

    class Meta:
        model = RoleGrantRequest
        fields = ["reason"]

    def _post_clean(self):
        if self._errors:
            return
        user = get_user_model().objects.filter(username=self.cleaned_data["username"]).first()
        if user is None:
            self.add_error("username", "There is no such account.")
            return
        try:
            self.instance = role_grant_request(
                user=user, role=self.cleaned_data["role"], actor=self.actor, reason=self.cleaned_data["reason"]
            )
        except (PortalError, ValidationError) as exc:
            self.add_error(None, error_message(exc))


@admin.register(RoleGrantRequest)
class RoleGrantRequestAdmin(FilterLookupsOnlyAdmin):
    """Trusted roles are granted by two people: one asks here ("Add"), another grants with the action."""

    list_display = ["user", "role", "requested_by", "reason", "created_at", "confirmed_by", "confirmed_at"]
    list_filter = ["role", ("confirmed_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "requested_by__username"]
    list_select_related = ["user", "requested_by", "confirmed_by"]
    actions = ["grant_selected"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = RoleGrantRequestForm
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = request.user
        return form

    def get_fields(self, request, obj=None):
        return ["username", "role", "reason"] if obj is None else list(self.list_display)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else list(self.list_display)

    def save_model(self, request, obj, form, change):
        pass  # saved by the service while the form was validated

    def has_add_permission(self, request):
        return is_pki_administrator(request.user)

    def has_view_permission(self, request, obj=None):
        return self.has_add_permission(request) or request.user.has_perm("enrollment.view_rolegrantrequest")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_grant_permission(self, request):
        return self.has_add_permission(request)

    @admin.action(description="Grant the selected roles (as the second person)", permissions=["grant"])
    def grant_selected(self, request, queryset):
        for grant in queryset.order_by("pk"):
            try:
                role_grant_confirm(request_id=grant.pk, actor=request.user)
            except (PortalError, ValidationError) as exc:
                self.message_user(request, f"Role grant #{grant.pk} not granted: {error_message(exc)}", messages.ERROR)
            else:
                self.message_user(request, f"Granted {grant.role} to {grant.user}.", messages.SUCCESS)


from . import admin_identity_changes  # noqa: E402,F401,I001 - registers the identity change request admin
