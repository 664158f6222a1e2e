from django.urls import path

from . import views

urlpatterns = [
    path("requests/", views.request_create, name="api-request-create"),
    path("requests/<int:request_id>/approve/", views.request_approve, name="api-request-approve"),
    path("requests/<int:request_id>/reject/", views.request_reject, name="api-request-reject"),
    path("certificates/<str:serial>/", views.certificate_detail, name="api-certificate-detail"),
    path("certificates/<str:serial>/pkcs12/", views.certificate_pkcs12, name="api-certificate-pkcs12"),
]
