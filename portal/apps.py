from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from . import checks  # noqa: F401, I001 - importing it registers the system checks
        from . import receivers, sessions

        receivers.connect()
        sessions.connect()
