"""The audit log's query filters (django-filter), for the JSON list and the CSV export alike."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import django_filters
from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.models import AuditEvent
from core.api.filters import CharField, char_filter, range_form

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
        raise forms.ValidationError(f"Not a valid {field}: use an {ISO_HELP}", code="invalid")
    try:
        if day is not None:
            parsed = datetime.combine(day + timedelta(days=1) if end_of_day else day, time.min)
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
    except OverflowError:  # 9999-12-31 as an end of day, or an offset past year 1 / 9999
        raise forms.ValidationError(f"Not a valid {field}: out of range.", code="invalid") from None
    return parsed


class InstantField(CharField):
    """A date or a date-time, as `_instant` reads it (after the blank, length and NUL checks)."""

    def __init__(self, *, instant_name: str, end_of_day: bool, **kwargs):
        self.instant_name, self.end_of_day = instant_name, end_of_day
        super().__init__(**kwargs)

    def clean(self, value) -> datetime | None:
        value = super().clean(value)
        if value in self.empty_values:
            return None
        return _instant(value, field=self.instant_name, end_of_day=self.end_of_day)


class InstantFilter(django_filters.Filter):
    field_class = InstantField


def _instant_filter(name: str, *, lookup_expr: str, end_of_day: bool, help_text: str) -> InstantFilter:
    return char_filter(
        "timestamp",
        max_length=64,
        help_text=help_text,
        lookup_expr=lookup_expr,
        instant_name=name,
        end_of_day=end_of_day,
        filter_class=InstantFilter,
    )


class AuditEventFilter(django_filters.FilterSet):
    action = char_filter(
        max_length=65,
        method="filter_action",
        help_text='Event type: exact ("recovery.approved"), or a prefix ending in "." or "*" ("recovery.").',
    )
    actor = char_filter("actor_name", max_length=150, help_text="Username of who did it.")
    object_type = char_filter(max_length=64, help_text='The object\'s model, e.g. "enrollment.certificate".')
    object_id = char_filter(max_length=64, help_text="The object's primary key.")
    since = _instant_filter(
        "since", lookup_expr="gte", end_of_day=False, help_text=f"Events at or after this. {ISO_HELP}"
    )
    until = _instant_filter(
        "until",
        lookup_expr="lt",
        end_of_day=True,
        help_text=f"Events before this; a date includes that whole day. {ISO_HELP}",
    )

    class Meta:
        model = AuditEvent
        fields: list[str] = []
        form = range_form("since", "until")

    def filter_action(self, queryset, name, value: str):
        """`action` ending in "." or "*" is a prefix ("recovery." or "recovery.*"), else exact."""
        if value.endswith("*"):
            return queryset.filter(action__startswith=value[:-1])
        if value.endswith("."):
            return queryset.filter(action__startswith=value)
        return queryset.filter(action=value)

    def given(self) -> dict:
        """The filters the caller gave, as checked (for the export's audit event)."""
        return {name: value for name, value in self.form.cleaned_data.items() if value not in (None, "")}

