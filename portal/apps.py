from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class PortalConfig(AppConfig):
    default = True  # INSTALLED_APPS "portal" means this one, not PortalAdminConfig
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from . import checks, checks_deploy  # noqa: F401, I001 - importing them registers the system checks
        from . import data_files, lockout, receivers, sessions

        data_files.connect()  # the SQLite database file 0600 (portal/data_files.py)
        receivers.connect()
        sessions.connect()
        lockout.connect()


class PortalAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the portal's site, which asks trusted roles for their second factor."""

    default = False
    default_site = "portal.admin_site.PortalAdminSite"
