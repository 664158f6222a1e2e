"""The audit changelist's filters, date drill-down and paginator, at a cost independent of the log's size.

Django's own read the table to offer their choices: a DISTINCT over every event for the event
types, object types, actors and the date hierarchy's years or days, and a COUNT(*) of every
matching row for the paginator; at a million events each is a scan (issue 13). Here the
choices come from what is declared (audit/events.py, the installed models), the actor filter
lists only the chosen actor, the drill-down offers every period between the oldest and the
newest event (two index reads), and the paginator counts at most COUNT_CAP rows, or takes
PostgreSQL's estimate for the whole table.
"""

from __future__ import annotations

import calendar
from datetime import date

from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.text import capfirst

from .events import AuditAction

COUNT_CAP = 10_000  # the paginator counts no further: "more than 10,000"


class DeclaredActionFilter(admin.AllValuesFieldListFilter):
    """?action=…: every declared event type (audit/events.py), not the values found in the table."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = sorted(AuditAction.values)  # replaces the DISTINCT query before it runs


def object_types() -> list[str]:
    """What an event's object can be (`obj._meta.label_lower`): the portal's models and the user model."""
    user_model = settings.AUTH_USER_MODEL.lower()
    return sorted(
        model._meta.label_lower
        for model in apps.get_models()
        if not model.__module__.startswith("django.") or model._meta.label_lower == user_model
    )


class DeclaredObjectTypeFilter(admin.AllValuesFieldListFilter):
    """?object_type=…: every installed model of the portal, not the values found in the table."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = object_types()


class ChosenActorFilter(admin.RelatedFieldListFilter):
    """?actor__id__exact=…: a link's actor (or no actor: the system); finding one by name is the search's.

    Listing every actor would read every event (Django's RelatedOnlyFieldListFilter) or every user."""

    def field_choices(self, field, request, model_admin):
        ids = [int(value) for value in (self.lookup_val or []) if str(value).isdigit()]
        if not ids:
            return []
        users = field.remote_field.model._default_manager.filter(pk__in=ids[:10])
        return [(user.pk, str(user)) for user in users]

    def has_output(self):
        return True


class CountBoundedPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows; the whole table, on PostgreSQL, from the planner's estimate.

    `count_kind` says which the page shows: "exact", "capped" (more than COUNT_CAP) or "estimate"."""

    count_kind = "exact"
    count_cap = COUNT_CAP

    @cached_property
    def count(self):
        queryset = self.object_list
        if not queryset.query.where and (estimate := _estimated_rows(queryset)) > COUNT_CAP:
            self.count_kind = "estimate"
            return estimate
        counted = queryset.order_by()[: COUNT_CAP + 1].count()
        if counted > COUNT_CAP:
            self.count_kind = "capped"
        return counted


def _estimated_rows(queryset) -> int:
    """PostgreSQL's estimate of the table's rows (pg_class.reltuples, kept by ANALYZE); -1 elsewhere."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return -1
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [queryset.model._meta.db_table])
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else -1


def _day(value) -> date:
    return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()


def date_hierarchy(cl) -> dict:
    """Django's date drill-down (admin/date_hierarchy.html) without its DISTINCT over the rows: every year,
    month or day between the oldest and the newest event, empty ones too. Two index reads."""
    field = cl.date_hierarchy
    names = f"{field}__year", f"{field}__month", f"{field}__day"
    manager = cl.model._default_manager
    first = manager.order_by(field).values_list(field, flat=True).first()
    last = manager.order_by(f"-{field}").values_list(field, flat=True).first()
    if first is None or last is None:
        return {"show": False}
    first, last = _day(first), _day(last)
    try:
        year, month, day = (int(cl.params[name]) if cl.params.get(name) else None for name in names)
        if year is not None:
            date(year, month or 1, day or 1)
        elif month is not None or day is not None:
            raise ValueError("a month or day without a year")
    except (TypeError, ValueError, OverflowError):
        return {"show": False}  # the changelist says what is wrong with the date (FilterLookupsOnlyChangeList)

    def link(filters):
        return cl.get_query_string(filters, [f"{field}__"])

    if year is None and first.year == last.year:
        year = first.year
        month = first.month if first.month == last.month else None
    if year and month and day:
        chosen = date(year, month, day)
        return {
            "show": True,
            "back": {"link": link({names[0]: year, names[1]: month}), "title": _month_title(chosen)},
            "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
        }
    if year and month:
        days = [date(year, month, number) for number in range(1, calendar.monthrange(year, month)[1] + 1)]
        return {
            "show": True,
            "back": {"link": link({names[0]: year}), "title": str(year)},
            "choices": [
                {"link": link({names[0]: year, names[1]: month, names[2]: d.day}),
                 "title": capfirst(formats.date_format(d, "MONTH_DAY_FORMAT"))}
                for d in days if first <= d <= last
            ],
        }  # fmt: skip
    if year:
        months = [date(year, number, 1) for number in range(1, 13)]
        return {
            "show": True,
            "back": {"link": link({}), "title": "All dates"},
            "choices": [
                {"link": link({names[0]: year, names[1]: m.month}), "title": _month_title(m)}
                for m in months if (first.year, first.month) <= (m.year, m.month) <= (last.year, last.month)
            ],
        }  # fmt: skip
    return {
        "show": True,
        "back": None,
        "choices": [{"link": link({names[0]: y}), "title": str(y)} for y in range(first.year, last.year + 1)],
    }


def _month_title(day: date) -> str:
    return capfirst(formats.date_format(day, "YEAR_MONTH_FORMAT"))
