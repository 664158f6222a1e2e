"""The audit log in the API: events out, with the same columns as the CSV (the filters: filters.py)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    # Microseconds, as hashed (DRF's default rendering would cut them to milliseconds).
    timestamp = serializers.SerializerMethodField()
    actor = serializers.CharField(
        source="actor_name", help_text="Username at the time of the event; empty: the system."
    )
    source_ip = serializers.IPAddressField(allow_null=True)
    details = serializers.JSONField()

    class Meta:
        model = AuditEvent
        fields = [
            "id", "timestamp", "actor_id", "actor", "action", "object_type", "object_id", "source_ip", "details",
            "previous_hash", "hash", "key_id",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_timestamp(self, obj: AuditEvent) -> str:
        return obj.timestamp.isoformat(timespec="microseconds")
