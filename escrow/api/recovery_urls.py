"""API v1 routes (recovery_urls); included from portal/urls.py under /api/v1/."""

from django.urls import path

from . import recovery_views as views

urlpatterns = [
    path("recoveries/", views.RecoveryListCreate.as_view(), name="api-recovery-list"),
    path("recoveries/<int:request_id>/", views.RecoveryDetail.as_view(), name="api-recovery-detail"),
    path("recoveries/<int:request_id>/approve/", views.RecoveryApprove.as_view(), name="api-recovery-approve"),
    path("recoveries/<int:request_id>/reject/", views.RecoveryReject.as_view(), name="api-recovery-reject"),
    path("recoveries/<int:request_id>/complete/", views.RecoveryComplete.as_view(), name="api-recovery-complete"),
    path("recoveries/<int:request_id>/pkcs12/", views.RecoveryPkcs12.as_view(), name="api-recovery-pkcs12"),
]
