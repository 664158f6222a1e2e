"""The audit log in the API: query filters in, events out (the same columns as the CSV)."""

from datetime import datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.models import AuditEvent

ISO_HELP = "ISO 8601 date (2026-11-28) or date-time (2026-11-28T14:00:00Z); without an offset, UTC."


def _instant(value: str, *, field: str, end_of_day: bool) -> datetime:
    """A date or date-time; a date means its start, or (end_of_day) the start of the next day."""
    parsed = day = None
    try:
        day = parse_date(value)  # a plain date first: parse_datetime takes one as midnight
        parsed = None if day is not None else parse_datetime(value)
    except ValueError:  # well-formed but impossible, such as 2026-02-30
        pass
    if parsed is None and day is None:
        raise serializers.ValidationError(f"Not a valid {field}: use an {ISO_HELP}")
    try:
        if day is not None:
            parsed = datetime.combine(day + timedelta(days=1) if end_of_day else day, time.min)
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
    except OverflowError:  # 9999-12-31 as an end of day, or an offset past year 1 / 9999
        raise serializers.ValidationError(f"Not a valid {field}: out of range.") from None
    return parsed


class AuditEventFilterSerializer(serializers.Serializer):
    action = serializers.CharField(
        required=False,
        max_length=65,
        help_text='Event type: exact ("recovery.approved"), or a prefix ending in "." or "*" ("recovery.").',
    )
    actor = serializers.CharField(required=False, max_length=150, help_text="Username of who did it.")
    object_type = serializers.CharField(
        required=False, max_length=64, help_text='The object\'s model, e.g. "enrollment.certificate".'
    )
    object_id = serializers.CharField(required=False, max_length=64, help_text="The object's primary key.")
    since = serializers.CharField(required=False, max_length=64, help_text=f"Events at or after this. {ISO_HELP}")
    until = serializers.CharField(
        required=False, max_length=64, help_text=f"Events before this; a date includes that whole day. {ISO_HELP}"
    )

    def validate_since(self, value: str) -> datetime:
        return _instant(value, field="since", end_of_day=False)

    def validate_until(self, value: str) -> datetime:
        return _instant(value, field="until", end_of_day=True)

    def validate(self, attrs: dict) -> dict:
        if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": "Must be later than since."})
        return attrs


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
            "previous_hash", "hash",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_timestamp(self, obj: AuditEvent) -> str:
        return obj.timestamp.isoformat(timespec="microseconds")
