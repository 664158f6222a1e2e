"""The query filters of the API's lists (django-filter): each parameter, its field and lookup.

Who sees which rows is the selectors' business (the view's get_queryset); these only narrow
what the caller may see.
"""

from __future__ import annotations

import django_filters

from core.api.filters import char_filter, choice_filter, datetime_filter, email_filter, range_form
from enrollment.models import Certificate, CertificateRequest, DirectoryPublication, Employee
from enrollment.pki.keys import KEY_TYPES
from enrollment.pki.profiles import CERTIFICATE_TYPES


class RequestFilter(django_filters.FilterSet):
    state = choice_filter(CertificateRequest.State.values, what="request state")
    key_type = choice_filter(KEY_TYPES, what="key type")
    certificate_type = choice_filter(CERTIFICATE_TYPES, what="certificate type")
    mailbox = email_filter("employee__mail", help_text="The employee's mailbox, any case.")
    created_after = datetime_filter("created_at", lookup_expr="gte", help_text="Created at or after (ISO 8601).")
    created_before = datetime_filter("created_at", lookup_expr="lt", help_text="Created before (ISO 8601).")

    class Meta:
        model = CertificateRequest
        fields: list[str] = []
        form = range_form("created_after", "created_before")


class CertificateFilter(django_filters.FilterSet):
    status = choice_filter(Certificate.Status.values, what="certificate status")
    mailbox = email_filter("mailbox", help_text="Exact mailbox, any case.")
    expiring_before = datetime_filter(
        "not_after", lookup_expr="lt", help_text="Only certificates whose notAfter is before this ISO 8601 date-time."
    )
    key_type = choice_filter(KEY_TYPES, what="key type")
    certificate_type = choice_filter(CERTIFICATE_TYPES, what="certificate type")

    class Meta:
        model = Certificate
        fields: list[str] = []


class EmployeeFilter(django_filters.FilterSet):
    mail = email_filter("mail", help_text="Exact mailbox, any case.")
    department = char_filter("department", max_length=128, help_text="Exact department.")

    class Meta:
        model = Employee
        fields: list[str] = []


class PublicationFilter(django_filters.FilterSet):
    state = choice_filter(DirectoryPublication.State.values, what="publication state")
    mailbox = email_filter("certificate__mailbox", help_text="Exact mailbox, any case.")

    class Meta:
        model = DirectoryPublication
        fields: list[str] = []
