from django.contrib import admin

from enrollment.admin import ReadOnlyAdmin

from .models import AuditEvent, EscrowRecord, KeyRecoveryAgent


@admin.register(KeyRecoveryAgent)
class KeyRecoveryAgentAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "is_active", "fingerprint_sha256", "created_at"]
    list_filter = ["is_active"]
    fields = ["name", "user", "is_active", "fingerprint_sha256", "subject", "not_after", "created_at"]
    readonly_fields = ["name", "user", "fingerprint_sha256", "subject", "not_after", "created_at"]

    def has_add_permission(self, request):
        return False  # agents are created with `manage.py create_kra`, which hands out the key

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="certificate subject")
    def subject(self, obj):
        return obj.certificate.subject.rfc4514_string()

    @admin.display(description="certificate expires")
    def not_after(self, obj):
        return obj.certificate.not_valid_after_utc


@admin.register(EscrowRecord)
class EscrowRecordAdmin(ReadOnlyAdmin):
    list_display = ["certificate", "created_at", "agent_names"]
    search_fields = ["certificate__serial", "certificate__mailbox"]
    exclude = ["envelope_der"]
    readonly_fields = ["certificate", "created_at", "agent_names", "envelope_size"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("certificate").prefetch_related("agents")

    @admin.display(description="agents who can decrypt it")
    def agent_names(self, obj):
        return ", ".join(agent.name for agent in obj.agents.all())

    @admin.display(description="envelope size (bytes)")
    def envelope_size(self, obj):
        return len(obj.envelope_der)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "timestamp", "actor_name", "action", "object_type", "object_id", "source_ip"]
    list_filter = ["action", "object_type", ("timestamp", admin.DateFieldListFilter)]
    search_fields = ["actor_name", "object_id", "action"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
