"""API v1 routes (recovery_urls); included from portal/urls.py under /api/v1/."""

from django.urls import path

from . import recovery_views as views

urlpatterns = [
    path("recoveries/", views.recovery_list_create, name="api-recovery-list"),
    path("recoveries/<int:request_id>/", views.recovery_detail, name="api-recovery-detail"),
    path("recoveries/<int:request_id>/approve/", views.recovery_approve, name="api-recovery-approve"),
    path("recoveries/<int:request_id>/reject/", views.recovery_reject, name="api-recovery-reject"),
    path("recoveries/<int:request_id>/complete/", views.recovery_complete, name="api-recovery-complete"),
    path("recoveries/<int:request_id>/pkcs12/", views.recovery_pkcs12, name="api-recovery-pkcs12"),
]
