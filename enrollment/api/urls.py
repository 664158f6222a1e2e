"""API v1 routes of enrollment (under /api/v1/), the OpenAPI schema and its Swagger UI.

The tokens, recoveries and audit events are routed from portal/urls.py.
"""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import views, views_batches, views_ca, views_certificates, views_employees, views_requests

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    # Requests
    path("requests/", views_requests.RequestListCreateView.as_view(), name="api-request-list"),
    path("requests/<int:request_id>/", views_requests.RequestDetailView.as_view(), name="api-request-detail"),
    path("requests/<int:request_id>/approve/", views_requests.RequestApproveView.as_view(), name="api-request-approve"),
    path("requests/<int:request_id>/reject/", views_requests.RequestRejectView.as_view(), name="api-request-reject"),
    # Certificates
    path("certificates/", views_certificates.CertificateListView.as_view(), name="api-certificate-list"),
    path("certificates/<str:serial>/", views_certificates.CertificateDetailView.as_view(), name="api-certificate-detail"),
    path("certificates/<str:serial>/pem/", views_certificates.CertificatePemView.as_view(), name="api-certificate-pem"),
    path("certificates/<str:serial>/der/", views_certificates.CertificateDerView.as_view(), name="api-certificate-der"),
    path("certificates/<str:serial>/pkcs12/", views_certificates.CertificatePkcs12View.as_view(), name="api-certificate-pkcs12"),
    path("certificates/<str:serial>/revoke/", views_certificates.CertificateRevokeView.as_view(), name="api-certificate-revoke"),
    path("certificates/<str:serial>/renew/", views_certificates.CertificateRenewView.as_view(), name="api-certificate-renew"),
    # CAs (public)
    path("ca/", views_ca.CaListView.as_view(), name="api-ca-list"),
    path("ca/<slug:slug>/", views_ca.CaDetailView.as_view(), name="api-ca-detail"),
    path("ca/<slug:slug>/chain/", views_ca.CaChainView.as_view(), name="api-ca-chain"),
    path("ca/<slug:slug>/crl/", views_ca.CaCrlView.as_view(), name="api-ca-crl"),
    # Employees
    path("employees/", views_employees.EmployeeListCreateView.as_view(), name="api-employee-list"),
    path("employees/<int:employee_id>/", views_employees.EmployeeDetailView.as_view(), name="api-employee-detail"),
    path("employees/<int:employee_id>/offboard/", views_employees.EmployeeOffboardView.as_view(), name="api-employee-offboard"),
    path(
        "employees/<int:employee_id>/offboarding-request/",
        views_employees.EmployeeOffboardingRequestView.as_view(),
        name="api-employee-offboarding-request",
    ),
    # Enrollment batches
    path("batches/", views_batches.BatchListCreateView.as_view(), name="api-batch-list"),
    path("batches/<int:batch_id>/", views_batches.BatchDetailView.as_view(), name="api-batch-detail"),
    # Directory publications
    path("publications/", views.PublicationListView.as_view(), name="api-publication-list"),
    path("publications/<int:publication_id>/", views.PublicationDetailView.as_view(), name="api-publication-detail"),
    path(
        "publications/<int:publication_id>/retry/", views.PublicationRetryView.as_view(), name="api-publication-retry"
    ),
]
