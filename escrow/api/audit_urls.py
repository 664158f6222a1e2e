"""API v1 routes (audit_urls); included from portal/urls.py under /api/v1/."""

from django.urls import path

from . import audit_views

urlpatterns = [
    path("audit-events/", audit_views.AuditEventListView.as_view(), name="api-audit-event-list"),
    path("audit-events.csv", audit_views.AuditEventCsvView.as_view(), name="api-audit-event-csv"),
]
