"""django-filter pieces for the API's list filters (the FilterSets are in each app's api/filters.py).

A FilterSet names, per query parameter, the model field and lookup it filters on; its form
fields check the values. The fields and helpers here read a parameter as the API reads the
same kind of value in a body (DRF's rules and wording, and the portal's own for choices), so
that a bad filter is a 400 with the message a person would get anywhere else, and document
each parameter in the OpenAPI schema (format, lengths, choices), which drf-spectacular cannot
read off a form field. A parameter left empty filters nothing.
"""

from __future__ import annotations

import django_filters
from django import forms
from drf_spectacular.plumbing import build_choice_description_list
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

__all__ = [
    "CharField", "CharFilter", "DateTimeField", "DateTimeFilter", "EmailField", "EmailFilter", "char_filter",
    "choice_filter", "datetime_filter", "email_filter", "range_form",
]

MAX_LENGTH_MESSAGE = "Ensure this field has no more than {max_length} characters."
BLANK_MESSAGE = "This field may not be blank."
MAILBOX_MAX_LENGTH = 254


# --- Form fields and filters ----------------------------------------------------------------


class NoBlankMixin:
    """For a CharField: a parameter of only spaces is a 400 (as for a serializer's CharField)."""

    def to_python(self, value):
        if isinstance(value, str) and value and not value.strip():
            raise forms.ValidationError(BLANK_MESSAGE, code="blank")
        return super().to_python(value)


class CharField(NoBlankMixin, forms.CharField):
    pass


class EmailField(NoBlankMixin, forms.EmailField):
    pass


class DateTimeField(forms.Field):
    """An ISO 8601 date-time, read by DRF's DateTimeField as in a body: a date alone is its
    midnight, without an offset the current time zone, and an instant that the time zone cannot
    hold (year 1 or 9999 with an offset) is a 400 rather than a failing query."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return serializers.DateTimeField().run_validation(value)
        except serializers.ValidationError as exc:
            error = exc.detail[0]
            raise forms.ValidationError(str(error), code=error.code) from None


class CharFilter(django_filters.CharFilter):
    field_class = CharField


class EmailFilter(django_filters.CharFilter):
    field_class = EmailField


class DateTimeFilter(django_filters.Filter):
    field_class = DateTimeField


# --- Documented filters ---------------------------------------------------------------------


def _documented(filter_: django_filters.Filter, schema: dict, description: str = "") -> django_filters.Filter:
    """The filter, with its query parameter's schema for drf-spectacular."""
    return extend_schema_field({**schema, "description": description} if description else schema)(filter_)


def choice_filter(
    choices: dict[str, str] | list[str], *, what: str, field_name: str | None = None
) -> django_filters.ChoiceFilter:
    """One of `choices` ({value: label}, or values), else '"x" is not a <what>; choose one of a, b.'"""
    pairs = list(choices.items()) if isinstance(choices, dict) else [(value, value) for value in choices]
    names = ", ".join(str(value) for value, _ in pairs)
    return _documented(
        django_filters.ChoiceFilter(
            field_name=field_name,
            choices=pairs,
            error_messages={"invalid_choice": f'"%(value)s" is not a {what}; choose one of {names}.'},
        ),
        {"type": "string", "minLength": 1, "enum": [value for value, _ in pairs]},
        build_choice_description_list(pairs),
    )


def char_filter(
    field_name: str | None = None,
    *,
    max_length: int,
    help_text: str,
    filter_class: type[django_filters.Filter] = CharFilter,
    **kwargs,
) -> django_filters.Filter:
    """A string of at most `max_length` characters: an exact match, unless lookup_expr or method
    says otherwise, or a `filter_class` whose form field (a CharField) reads the string further."""
    return _documented(
        filter_class(
            field_name=field_name,
            max_length=max_length,
            error_messages={"max_length": MAX_LENGTH_MESSAGE.format(max_length=max_length)},
            **kwargs,
        ),
        {"type": "string", "minLength": 1, "maxLength": max_length},
        help_text,
    )


def email_filter(field_name: str, *, help_text: str, lookup_expr: str = "iexact") -> EmailFilter:
    """A mailbox (its syntax checked), matched in any case unless lookup_expr says otherwise."""
    return _documented(
        EmailFilter(
            field_name=field_name,
            lookup_expr=lookup_expr,
            max_length=MAILBOX_MAX_LENGTH,
            error_messages={"max_length": MAX_LENGTH_MESSAGE.format(max_length=MAILBOX_MAX_LENGTH)},
        ),
        {"type": "string", "format": "email", "minLength": 1, "maxLength": MAILBOX_MAX_LENGTH},
        help_text,
    )


def datetime_filter(field_name: str, *, lookup_expr: str, help_text: str) -> DateTimeFilter:
    """An ISO 8601 date-time (see DateTimeField) compared with `lookup_expr` ("gte", "lt", …)."""
    return _documented(
        DateTimeFilter(field_name=field_name, lookup_expr=lookup_expr),
        {"type": "string", "format": "date-time"},
        help_text,
    )


def range_form(lower: str, upper: str) -> type[forms.Form]:
    """A FilterSet's Meta.form that wants `upper` later than `lower` when both are given (checked,
    as a serializer's validate(), once every parameter is valid by itself)."""

    class RangeForm(forms.Form):
        def clean(self):
            cleaned = super().clean()
            start, end = cleaned.get(lower), cleaned.get(upper)
            if not self.errors and start is not None and end is not None and start >= end:
                self.add_error(upper, f"Must be later than {lower}.")
            return cleaned

    RangeForm.__name__ = RangeForm.__qualname__ = f"RangeForm_{lower}_{upper}"
    return RangeForm
