"""Admin helpers every app's admin uses: read-only model admins, action confirmation pages,
and the one-line message of a service error."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from .exceptions import error_message


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by services: visible to those allowed to view, editable by nobody."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def action_confirmation(
    modeladmin, request, queryset, *, action: str, title: str, question: str, button: str, form, describe=None
):
    """The confirmation page of an admin action (posts the same selection back with confirm=yes).

    `describe(obj)`, when given, is shown in bold beside each object: what the decision means for it.
    """
    return TemplateResponse(
        request,
        "admin/action_confirmation.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "question": question,
            "button": button,
            "opts": modeladmin.model._meta,
            "queryset": queryset,
            "items": [(obj, describe(obj) if describe else "") for obj in queryset],
            "form": form,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        },
    )


__all__ = ["ReadOnlyAdmin", "action_confirmation", "error_message"]
