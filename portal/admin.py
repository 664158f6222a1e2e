from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import IntegerField, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.admin_tools import FilterLookupsOnlyAdmin

from .accounts import (
    ACCOUNT_FIELDS,
    account_change_record,
    account_create_record,
    account_password_set_record,
    account_password_set_refusal,
)
from .lockout import cool_off, lockout_unlock
from .models import ApiToken

# Second-factor devices are enrolled by their owners and reset with `manage.py reset_second_factor`,
# both audited; django-otp's admin pages would change them (or add one for someone else) unaudited.
for _device_model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_device_model):
        admin.site.unregister(_device_model)


@admin.register(ApiToken)
class ApiTokenAdmin(FilterLookupsOnlyAdmin):
    """Who has which API token, for superusers; the token itself is never stored, so never shown."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at", "second_factor"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), ("expires_at", admin.DateFieldListFilter)]
    search_fields = ["name", "prefix", "user__username"]
    exclude = ["key_hash"]
    readonly_fields = [
        "user", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at", "second_factor",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _recent_failures(field: str):
    """Failures counted within the cool-off for the row's account (or source), summed over its rows."""
    recent = AccessAttempt.objects.filter(attempt_time__gte=timezone.now() - cool_off(), **{field: OuterRef(field)})
    total = recent.order_by().values(field).annotate(total=Sum("failures_since_start")).values("total")
    return Coalesce(Subquery(total, output_field=IntegerField()), 0)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(FilterLookupsOnlyAdmin):
    """Failed log-ins being counted (django-axes): which account, from where, how many; unlocking is audited.

    For superusers and PKI administrators (axes.view_accessattempt to see, axes.delete_accessattempt
    to unlock). The rows are axes' counters: deleting or changing one would be an unaudited unlock,
    so the only way to change them is the two unlock actions (portal.lockout.lockout_unlock)."""

    list_display = ["username", "ip_address", "failures_since_start", "account_failures", "source_failures",
                    "locked", "attempt_time", "path_info"]
    list_filter = ["attempt_time", "path_info"]
    search_fields = ["username", "ip_address"]
    ordering = ["-attempt_time"]
    # Not get_data / post_data: axes masks the names and passwords there, and the rest says nothing.
    fields = ["username", "ip_address", "user_agent", "path_info", "failures_since_start", "attempt_time"]
    readonly_fields = fields
    actions = ["unlock_accounts", "unlock_sources"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(account_total=_recent_failures("username"), source_total=_recent_failures("ip_address"))
        )

    @admin.display(description="account's failures", ordering="account_total")
    def account_failures(self, obj) -> int:
        return obj.account_total if obj.username else 0

    @admin.display(description="source's failures", ordering="source_total")
    def source_failures(self, obj) -> int:
        return obj.source_total

    @admin.display(description="locked", boolean=True)
    def locked(self, obj) -> bool:
        return max(self.account_failures(obj), obj.source_total) >= settings.AXES_FAILURE_LIMIT

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_unlock_permission(self, request) -> bool:
        return request.user.has_perm("axes.delete_accessattempt")

    def _unlock(self, request, scopes: list[dict], described: str) -> None:
        unlocked = 0
        for scope in scopes:
            unlocked += bool(lockout_unlock(actor=request.user, via="admin", **scope))
        self.message_user(
            request, f"Unlocked {unlocked} {described}; their failed log-ins are forgotten.", messages.SUCCESS
        )

    @admin.action(description="Unlock the accounts of the selected attempts (from every address)", permissions=["unlock"])
    def unlock_accounts(self, request, queryset):
        names = queryset.exclude(username=None).order_by("username").values_list("username", flat=True).distinct()
        self._unlock(request, [{"account_key": name} for name in names], "account(s)")

    @admin.action(description="Unlock the addresses of the selected attempts (for every account)", permissions=["unlock"])
    def unlock_sources(self, request, queryset):
        sources = queryset.exclude(ip_address=None).order_by("ip_address").values_list("ip_address", flat=True).distinct()
        self._unlock(request, [{"source": source} for source in sources], "address(es)")


class PortalUserAdmin(FilterLookupsOnlyAdmin, UserAdmin):
    """Accounts without role editing: trusted roles change only through the audited, dual-controlled
    role grants (Enrollment → Role grant requests; enrollment/services/role_grants.py)."""

    ROLE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")

    def has_delete_permission(self, request, obj=None):
        return False  # accounts are deactivated (offboarding), never deleted: audit events name them

    def get_readonly_fields(self, request, obj=None):
        # Deactivation is offboarding's (dual control for trusted accounts), never a tick box here.
        return [*super().get_readonly_fields(request, obj), *self.ROLE_FIELDS, "is_active"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        before = {name: form.initial.get(name) for name in ACCOUNT_FIELDS} if change else {}
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if change:
                account_change_record(actor=request.user, user=obj, before=before)
            else:
                account_create_record(actor=request.user, user=obj)

    def user_change_password(self, request, id, form_url=""):
        """Django's password form, for accounts whose password one person may set (portal/accounts.py)."""
        user = self.get_object(request, unquote(id))
        allowed = user is not None and self.has_change_permission(request, user)  # else Django's 403/404
        if allowed and (refusal := account_password_set_refusal(actor=request.user, user=user)):
            self.message_user(request, refusal, messages.ERROR)
            return redirect(reverse(f"{self.admin_site.name}:auth_user_change", args=[user.pk]))
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302 and user is not None:
                account_password_set_record(actor=request.user, user=user)
        return response

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return [
            (name, {**options, "description": ROLE_HELP} if name == "Permissions" else options)
            for name, options in fieldsets
        ]


ROLE_HELP = "Roles change through Enrollment → Role grant requests: one PKI administrator asks, another grants."

class PortalGroupAdmin(FilterLookupsOnlyAdmin, GroupAdmin):
    """The roles' groups, read-only: their permissions are the code's (enrollment.roles.ROLE_PERMISSIONS, set
    after every migrate); changing, adding or deleting a group here would change a role for all its holders
    at once, by one person and unaudited."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), PortalUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, PortalGroupAdmin)
