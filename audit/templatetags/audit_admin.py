"""The audit changelist's date drill-down, without Django's DISTINCT over the log (admin_filters.py)."""

from django import template

from audit.admin_filters import date_hierarchy

register = template.Library()


@register.inclusion_tag("admin/date_hierarchy.html")
def audit_date_hierarchy(cl):
    return date_hierarchy(cl)
