"""The admin site: Django's, refusing trusted roles whose session has not passed the second factor.

Installed as the default site (portal.apps.PortalAdminConfig replaces django.contrib.admin
in INSTALLED_APPS), so every ModelAdmin registered with `admin.site` and every admin URL
stays as it was. Its own page: the dashboard (admin_dashboard.py), behind the same checks.
SecondFactorMiddleware sends such sessions to the second-factor pages
before they reach the admin; this is the same rule where the admin decides itself (as
django_otp.admin.OTPAdminSite does, with the demo exemption of portal/second_factor.py).
"""

from django.contrib import admin
from django.urls import path, reverse

from .second_factor import second_factor_satisfied
from .second_factor_guards import second_factor_redirect


class PortalAdminSite(admin.AdminSite):
    def has_permission(self, request) -> bool:
        return super().has_permission(request) and second_factor_satisfied(request)

    def login(self, request, extra_context=None):
        # Logged in with the password but not with the second factor: the verify page, not a second log-in form.
        if request.user.is_authenticated and request.user.is_active and not second_factor_satisfied(request):
            return second_factor_redirect(request, next_url=request.GET.get("next") or reverse("admin:index"))
        return super().login(request, extra_context)

    def get_urls(self):
        # admin_view: logged in, staff and past the second factor (has_permission), as every admin page.
        return [path("dashboard/", self.admin_view(self.dashboard_view), name="dashboard"), *super().get_urls()]

    def dashboard_view(self, request):
        from .admin_dashboard import dashboard_view  # the selectors load the apps' models, ready by now

        return dashboard_view(request, site=self)
