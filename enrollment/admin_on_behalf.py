"""Requesting a certificate on an employee's behalf, from the employee admin.

The request is certificate_request_create(submitted_by=the approver): the service decides
who may (approvers only) and keeps one pending request per person; separation of duties
then keeps the submitter from approving it.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.exceptions import PortalError, error_message
from enrollment.services.requests import certificate_request_create

from .pki.keys import KEY_TYPES
from .pki.profiles import CERTIFICATE_TYPES


class OnBehalfRequestForm(forms.Form):
    key_type = forms.ChoiceField(choices=list(KEY_TYPES.items()), initial="rsa-3072")
    certificate_type = forms.ChoiceField(
        choices=list(CERTIFICATE_TYPES.items()),
        initial="sponsor-strict",
        help_text="Sponsor-validated names the person and the organization (it needs a given name and surname); "
        "mailbox-validated names only the address.",
    )


class RequestOnBehalfMixin:
    """For EmployeeAdmin: the page `<employee>/request-certificate/` and an action that opens it."""

    def has_request_on_behalf_permission(self, request):
        # Who the service lets submit for someone else (certificate_request_create).
        return request.user.is_active and request.user.has_perm("enrollment.approve_certificaterequest")

    def get_urls(self):
        return [
            path(
                "<path:object_id>/request-certificate/",
                self.admin_site.admin_view(self.request_on_behalf_view),
                name="enrollment_employee_request_certificate",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_request_on_behalf": self.has_request_on_behalf_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Request a certificate on their behalf…", permissions=["request_on_behalf"])
    def request_certificate_on_behalf(self, request, queryset):
        """One employee at a time: the request page for that employee."""
        if queryset.count() != 1:
            self.message_user(request, "Select one employee to request a certificate for.", messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:enrollment_employee_request_certificate", args=[queryset.get().pk]))

    def request_on_behalf_view(self, request, object_id):
        if not (self.has_request_on_behalf_permission(request) and self.has_view_permission(request)):
            raise PermissionDenied
        employee = self.get_object(request, object_id)
        if employee is None:
            raise Http404(f"There is no employee #{object_id}.")
        form = OnBehalfRequestForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            try:
                created = certificate_request_create(
                    employee=employee,
                    submitted_by=request.user,
                    key_type=form.cleaned_data["key_type"],
                    certificate_type=form.cleaned_data["certificate_type"],
                )
            except ValidationError as exc:
                if hasattr(exc, "error_dict"):
                    for name, errors in exc.error_dict.items():
                        form.add_error(name if name in form.fields else None, errors)
                else:
                    form.add_error(None, error_message(exc))
            except PortalError as exc:
                form.add_error(None, error_message(exc))
            else:
                self.message_user(
                    request,
                    f"Request #{created.pk} submitted for {employee.mail}. Another approver decides it: you "
                    "submitted it (separation of duties).",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:enrollment_certificaterequest_change", args=[created.pk]))
        return TemplateResponse(
            request,
            "admin/enrollment/employee/request_certificate.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Request a certificate for {employee.display_name}",
                "opts": self.opts,
                "original": employee,
                "form": form,
                "pending": employee.requests.filter(state="pending").order_by("pk").first(),
            },
        )
