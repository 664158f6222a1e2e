from django.apps import AppConfig


class EscrowConfig(AppConfig):
    name = "escrow"
    verbose_name = "Key escrow and audit"
    default_auto_field = "django.db.models.BigAutoField"
