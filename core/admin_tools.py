"""Admin helpers every app's admin uses: read-only model admins, action confirmation pages,
and the one-line message of a service error."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers, widgets
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from .exceptions import error_message


class FilterLookupsOnlyChangeList(ChangeList):
    """A changelist that filters only through its list filters (and date hierarchy).

    Django's admin applies any other `?field__lookup=value` of the query string to the
    queryset as it is, on any local field with any lookup: `?details__contains=…` reached
    SQLite, which has no JSON containment, as NotSupportedError at render time (a 500), and
    lookups the filters never offer are a way to probe the data. Here a parameter that no list
    filter consumed is refused with a 400 (DisallowedModelAdminLookup, as Django refuses
    lookups across relations) unless it is a plain comparison (SAFE_LOOKUPS, which every
    backend runs) on a field the list filters or the date hierarchy offer (`?state=pending`
    for the filter's own `?state__exact=pending`), or a limit_choices_to lookup of a raw-id
    pop-up, which Django's lookup_allowed allows too.

    An offered filter with a value it cannot use (`?timestamp__gte=garbage`, an impossible date
    hierarchy day) is no redirect to the whole, unfiltered list, as in Django (which looks
    as if the filter had matched everything): the list is empty, `filter_error` says which
    filter and why, and the admin shows it as an error (FilterLookupsOnlyAdmin). A page past
    the last shows the first one, saying so.
    """

    SAFE_LOOKUPS = ("exact", "iexact", "in", "isnull", "gt", "gte", "lt", "lte")
    filter_error = ""
    filter_refused = False  # the query's filters were refused: nothing is listed
    # What the page needs when get_filters itself refused the query (the date hierarchy's day).
    filter_specs: list = []
    has_filters = False
    has_active_filters = True

    def _filtered_fields(self) -> set[str]:
        fields = {self.date_hierarchy} if self.date_hierarchy else set()
        for list_filter in self.list_filter:
            field = list_filter[0] if isinstance(list_filter, (tuple, list)) else list_filter
            if isinstance(field, str):
                fields |= {field, f"{field}__id", f"{field}__pk"}
        return fields

    def _safe(self, key: str, fields: set[str]) -> bool:
        path, _, lookup = key.rpartition("__")
        return key in fields or (lookup in self.SAFE_LOOKUPS and path in fields)

    def get_filters(self, request):
        filter_specs, has_filters, remaining, may_have_duplicates, has_active_filters = super().get_filters(request)
        raw = self.get_filters_params()
        fields = self._filtered_fields()
        allowed = {key for key in remaining if self._safe(key, fields)}
        popup = set()
        for fk_lookup in self.model._meta.related_fkey_lookups:
            popup |= set(widgets.url_params_from_lookup_dict(fk_lookup() if callable(fk_lookup) else fk_lookup).items())
        for key in remaining:
            if key in allowed or all((key, value) in popup for value in raw.get(key, [])):
                continue
            raise DisallowedModelAdminLookup(f"Filtering by {key} is not offered here: use the filters on the page.")
        return filter_specs, has_filters, remaining, may_have_duplicates, has_active_filters

    def get_queryset(self, request, exclude_parameters=None):
        try:
            return super().get_queryset(request, exclude_parameters)
        except IncorrectLookupParameters as exc:
            if not self.filter_refused:
                self.filter_refused = True
                self.filter_error = f"Nothing is listed: {self._refused_filter(request)} {_reason(exc)}"
            return self.root_queryset.none()

    def _refused_filter(self, request) -> str:
        """Which filter of the query was refused, tried one by one (querysets are lazy: no query)."""
        for spec in self.filter_specs:
            try:
                spec.queryset(request, self.root_queryset)
            except (IncorrectLookupParameters, ValidationError, ValueError):
                return f"the filter {_as_query(spec.used_parameters)} is invalid:"
        hierarchy = {
            key: values for key, values in self.get_filters_params().items()
            if self.date_hierarchy and key.startswith(f"{self.date_hierarchy}__")
        }
        return f"the date {_as_query(hierarchy)} is invalid:" if hierarchy else "a filter is invalid:"

    def get_results(self, request):
        try:
            super().get_results(request)
        except IncorrectLookupParameters:  # a page past the last one (Django: the whole list, silently)
            self.filter_error = f"There is no page {self.page_num} in this list: the first page is shown."
            self.page_num = 1
            super().get_results(request)


def _reason(exc: IncorrectLookupParameters) -> str:
    cause = exc.args[0] if exc.args else exc
    if isinstance(cause, ValidationError):
        return " ".join(cause.messages)
    if isinstance(cause, ValueError) and str(cause).startswith("invalid literal for int()"):
        return "the year, month and day are numbers."
    return str(cause) or "not a value this filter takes."


def _as_query(parameters: dict) -> str:
    pairs = []
    for key, value in parameters.items():
        for one in value if isinstance(value, (list, tuple)) else [value]:
            pairs.append(f"{key}={one!r}"[:120])
    return ", ".join(pairs)


class FilterLookupsOnlyAdmin(admin.ModelAdmin):
    """Changelists filter only through their list filters (FilterLookupsOnlyChangeList);
    a filter value they cannot use is an error message above an empty list (status 400)."""

    def get_changelist(self, request, **kwargs):
        return FilterLookupsOnlyChangeList

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if isinstance(changelist, FilterLookupsOnlyChangeList) and changelist.filter_error:
            messages.error(request, changelist.filter_error, fail_silently=True)
            if changelist.filter_refused:
                response.status_code = 400
        return response


class ReadOnlyAdmin(FilterLookupsOnlyAdmin):
    """Records written only by services: visible to those allowed to view, editable by nobody.

    Their changelists filter only through their list filters (FilterLookupsOnlyAdmin)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def action_confirmation(
    modeladmin, request, queryset, *, action: str, title: str, question: str, button: str, form, describe=None
):
    """The confirmation page of an admin action (posts the same selection back with confirm=yes).

    `describe(obj)`, when given, is shown in bold beside each object: what the decision means for it.
    """
    return TemplateResponse(
        request,
        "admin/action_confirmation.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "question": question,
            "button": button,
            "opts": modeladmin.model._meta,
            "queryset": queryset,
            "items": [(obj, describe(obj) if describe else "") for obj in queryset],
            "form": form,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        },
    )


__all__ = [
    "FilterLookupsOnlyAdmin", "FilterLookupsOnlyChangeList", "ReadOnlyAdmin", "action_confirmation", "error_message",
]
