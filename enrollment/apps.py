from django.apps import AppConfig
from django.db.models.signals import post_migrate


class EnrollmentConfig(AppConfig):
    name = "enrollment"
    verbose_name = "Enrollment"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import receivers, roles

        receivers.connect()
        post_migrate.connect(roles.ensure_roles, sender=self, dispatch_uid="enrollment.ensure_roles")
