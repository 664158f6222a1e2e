"""List filters of the certificates' admin behind the dashboard's numbers (portal/admin_dashboard.py).

Each applies the same condition as the dashboard's count (enrollment.selectors_dashboard,
escrow.selectors_dashboard), so a number and the list it links to are the same rows. A value
the filter does not offer is refused (IncorrectLookupParameters: core.admin_tools shows the
error above an empty list), never ignored, which would silently show every row.
"""

from __future__ import annotations

from datetime import date

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.utils import timezone

from escrow.selectors_dashboard import PICKUP_MISSED, PICKUP_WAITING, key_not_downloaded_q

from .models import EnrollmentBatch
from .pki.crl import REVOCATION_REASON_NAMES
from .selectors_dashboard import (
    EXPIRY_WINDOWS,
    crl_this_updates,
    expiring_within_q,
    issued_in_week_q,
    issued_weeks,
    revoked_after_crl_q,
    revoked_for_reason_q,
)


class _ChoiceFilter(admin.SimpleListFilter):
    """A filter whose values are exactly its lookups."""

    def checked_value(self) -> str | None:
        value = self.value()
        offered = [str(key) for key, _ in self.lookup_choices]
        if value is not None and value not in offered:
            raise IncorrectLookupParameters(f"{value[:40]!r} is not one of {', '.join(offered)}.")
        return value


class ExpiresWithinFilter(_ChoiceFilter):
    title = "expires within"
    parameter_name = "expires_within"

    def lookups(self, request, model_admin):
        return [(str(days), f"{days} days") for days in EXPIRY_WINDOWS]

    def queryset(self, request, queryset):
        value = self.checked_value()
        if value is None:
            return queryset
        return queryset.filter(expiring_within_q(days=int(value), now=timezone.now()))


class IssuedWeekFilter(admin.SimpleListFilter):
    """?issued_week=YYYY-MM-DD, a Monday: the certificates issued that week (the last 12 are offered)."""

    title = "issued in the week of"
    parameter_name = "issued_week"

    def has_output(self) -> bool:
        # In the sidebar only while in use (twelve weeks would crowd it; the dashboard links here). The
        # changelist applies only filters with output, so this is True whenever a value is given.
        return self.value() is not None

    def lookups(self, request, model_admin):
        return [(week.isoformat(), f"{week:%d %b %Y}") for week in reversed(issued_weeks(now=timezone.now()))]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        try:
            week = date.fromisoformat(value)
        except ValueError:
            week = None
        if week is None or week.weekday() != 0:
            raise IncorrectLookupParameters(f"{value[:40]!r} is not the date of a Monday (YYYY-MM-DD).")
        return queryset.filter(issued_in_week_q(week=week))


class KeyPickupFilter(_ChoiceFilter):
    title = "key never downloaded"
    parameter_name = "key_pickup"

    def lookups(self, request, model_admin):
        return [(PICKUP_WAITING, "download window open"), (PICKUP_MISSED, "download window closed")]

    def queryset(self, request, queryset):
        value = self.checked_value()
        if value is None:
            return queryset
        return queryset.filter(key_not_downloaded_q(window=value, now=timezone.now()))


class RevocationReasonFilter(_ChoiceFilter):
    title = "revocation reason"
    parameter_name = "revocation_reason"

    def lookups(self, request, model_admin):
        return [(name, name.replace("_", " ")) for name in REVOCATION_REASON_NAMES]

    def queryset(self, request, queryset):
        value = self.checked_value()
        if value is None:
            return queryset
        return queryset.filter(revoked_for_reason_q(reason=value))


class OnCrlFilter(_ChoiceFilter):
    title = "on the current CRL"
    parameter_name = "on_crl"

    def lookups(self, request, model_admin):
        return [("no", "revoked, not on it yet")]

    def queryset(self, request, queryset):
        value = self.checked_value()
        if value is None:
            return queryset
        return queryset.filter(revoked_after_crl_q(crl_this_updates()))


CERTIFICATE_DASHBOARD_FILTERS = [
    IssuedWeekFilter,
    ExpiresWithinFilter,
    KeyPickupFilter,
    RevocationReasonFilter,
    OnCrlFilter,
]


class EnrollmentBatchFilter(admin.SimpleListFilter):
    """?batch=N: the requests of one bulk enrollment (the link of its approvers' mail); the latest few are offered."""

    title = "enrollment batch"
    parameter_name = "batch"
    OFFERED = 10

    def lookups(self, request, model_admin):
        latest = EnrollmentBatch.objects.order_by("-pk").values_list("pk", "source")[: self.OFFERED]
        return [(str(pk), f"#{pk} {source[:40]}") for pk, source in latest]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            raise IncorrectLookupParameters(f"{value[:40]!r} is not an enrollment batch number.")
        return queryset.filter(batch_id=int(value))
