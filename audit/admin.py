"""The audit log in the admin: read-only for everyone (superusers included), for auditors.

The changelist says how far the hash chain verifies (audit/verification.py), and exports what it shows (the
current filters and search) as a streamed CSV, from a button or for the selected rows.
"""

from datetime import datetime, time, timedelta

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.urls import path
from django.utils import timezone
from django.utils.dateparse import parse_date

from core.admin_tools import ReadOnlyAdmin

from . import selectors
from .admin_filters import ChosenActorFilter, CountBoundedPaginator, DeclaredActionFilter, DeclaredObjectTypeFilter
from .models import AuditEvent
from .services import audit_export_csv
from .verification import audit_chain_advance

# Events after the stored verified point that one changelist view verifies (audit/verification.py);
# the periodic job audit.chain_verify takes the rest.
AUDIT_PAGE_VERIFY_LIMIT = 500


class DateRangeFilter(admin.ListFilter):
    """From and to (inclusive) dates, in the server's time zone: ?since=2026-11-01&until=2026-11-30."""

    title = "date range"
    template = "admin/audit/auditevent/date_range_filter.html"
    parameters = ("since", "until")

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        for name in self.parameters:
            if name in params:
                self.used_parameters[name] = params.pop(name)[-1]

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return list(self.parameters)

    def _day_start(self, name: str, *, next_day: bool = False):
        text = self.used_parameters.get(name)
        if not text:
            return None
        try:
            day = parse_date(text)
        except ValueError:
            day = None
        if day is None:
            raise IncorrectLookupParameters(f"{text!r} is not a date: use YYYY-MM-DD.")
        if next_day:
            try:
                day += timedelta(days=1)
            except OverflowError:  # 9999-12-31: until the end of time
                return None
        return timezone.make_aware(datetime.combine(day, time.min))

    def queryset(self, request, queryset):
        since, until = self._day_start("since"), self._day_start("until", next_day=True)
        if since is not None and until is not None and since >= until:
            raise IncorrectLookupParameters("the start date is after the end date.")
        if since is not None:
            queryset = queryset.filter(timestamp__gte=since)
        if until is not None:
            queryset = queryset.filter(timestamp__lt=until)
        return queryset

    def choices(self, changelist):
        # One "choice": the form, carrying the other filters along as hidden fields.
        keep = [
            (name, value)
            for name, values in changelist.filter_params.items()
            if name not in self.parameters
            for value in values
        ]
        yield {
            "since": self.used_parameters.get("since", ""),
            "until": self.used_parameters.get("until", ""),
            "hidden": keep,
            "clear": changelist.get_query_string(remove=list(self.parameters)),
            "selected": bool(self.used_parameters),
        }


def _csv_response(lines) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-events-{timezone.now():%Y%m%dT%H%M%SZ}.csv"'
    response["Cache-Control"] = "no-store"
    return response


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "timestamp", "actor_name", "action", "object_type", "object_id", "source_ip"]
    list_display_links = ["id", "timestamp"]
    # Choices that do not read the log (admin_filters.py): at a million events a DISTINCT is a scan.
    list_filter = [
        ("action", DeclaredActionFilter),
        ("actor", ChosenActorFilter),
        ("object_type", DeclaredObjectTypeFilter),
        ("timestamp", admin.DateFieldListFilter),
        DateRangeFilter,
    ]
    date_hierarchy = "timestamp"  # drawn by audit_date_hierarchy (change_list.html): no DISTINCT either
    search_fields = ["object_id", "actor_name", "action", "details"]
    show_full_result_count = False  # a large log: no second COUNT(*) over the whole table
    paginator = CountBoundedPaginator
    fields = [
        "id", "timestamp_exact", "actor", "actor_name", "action", "object_type", "object_id", "source_ip", "details",
        "previous_hash", "hash", "key_id",
    ]
    readonly_fields = fields
    actions = ["export_csv"]
    change_list_template = "admin/audit/auditevent/change_list.html"

    @admin.display(description="timestamp (as hashed)")
    def timestamp_exact(self, obj):
        return obj.timestamp.isoformat(timespec="microseconds")

    # Read-only: ReadOnlyAdmin refuses add, change and delete to everyone; viewing is for
    # those who may read the audit log (Auditors, superusers), as in the API.
    def has_view_permission(self, request, obj=None):
        return selectors.audit_log_visible_to(user=request.user)

    def has_module_permission(self, request):
        return selectors.audit_log_visible_to(user=request.user)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("export.csv", self.admin_site.admin_view(self.export_view), name="%s_%s_export" % info),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {})}
        if request.method == "GET" and self.has_view_permission(request):
            audit_chain_advance(limit=AUDIT_PAGE_VERIFY_LIMIT)  # the newest events; older ones were verified before
            extra_context["chain_status"] = selectors.audit_chain_verification()
        return super().changelist_view(request, extra_context=extra_context)

    def _export(self, request, queryset, *, via: str):
        filters = {key: value for key, value in request.GET.items()}
        if via == "admin action":
            filters["selected"] = queryset.count()
        return _csv_response(audit_export_csv(actor=request.user, events=queryset, via=via, filters=filters))

    def export_view(self, request):
        """The changelist's current filters and search, all pages, as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        if changelist.filter_refused:  # never an export of everything, nor of nothing, for a refused filter
            return HttpResponseBadRequest(changelist.filter_error, content_type="text/plain; charset=utf-8")
        return self._export(request, changelist.get_queryset(request), via="admin")

    @admin.action(description="Export selected audit events as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        return self._export(request, queryset, via="admin action")
