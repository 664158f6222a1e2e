"""API v1 routes of the audit log; included from portal/urls.py under /api/v1/."""

from django.urls import path

from . import views

urlpatterns = [
    path("audit-events/", views.AuditEventListView.as_view(), name="api-audit-event-list"),
    path("audit-events.csv", views.AuditEventCsvView.as_view(), name="api-audit-event-csv"),
]
