"""API v1 routes (under /api/v1/), the OpenAPI schema and its Swagger UI."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import tokens, views

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    # Tokens
    path("tokens/", tokens.TokenListCreateView.as_view(), name="api-token-list"),
    path("tokens/<int:token_id>/", tokens.TokenDetailView.as_view(), name="api-token-detail"),
    # Requests
    path("requests/", views.RequestListCreateView.as_view(), name="api-request-list"),
    path("requests/<int:request_id>/", views.RequestDetailView.as_view(), name="api-request-detail"),
    path("requests/<int:request_id>/approve/", views.RequestApproveView.as_view(), name="api-request-approve"),
    path("requests/<int:request_id>/reject/", views.RequestRejectView.as_view(), name="api-request-reject"),
    # Certificates
    path("certificates/", views.CertificateListView.as_view(), name="api-certificate-list"),
    path("certificates/<str:serial>/", views.CertificateDetailView.as_view(), name="api-certificate-detail"),
    path("certificates/<str:serial>/pem/", views.CertificatePemView.as_view(), name="api-certificate-pem"),
    path("certificates/<str:serial>/der/", views.CertificateDerView.as_view(), name="api-certificate-der"),
    path("certificates/<str:serial>/pkcs12/", views.CertificatePkcs12View.as_view(), name="api-certificate-pkcs12"),
    path("certificates/<str:serial>/revoke/", views.CertificateRevokeView.as_view(), name="api-certificate-revoke"),
    path("certificates/<str:serial>/renew/", views.CertificateRenewView.as_view(), name="api-certificate-renew"),
    # CAs (public)
    path("ca/", views.CaListView.as_view(), name="api-ca-list"),
    path("ca/<slug:slug>/", views.CaDetailView.as_view(), name="api-ca-detail"),
    path("ca/<slug:slug>/chain/", views.CaChainView.as_view(), name="api-ca-chain"),
    path("ca/<slug:slug>/crl/", views.CaCrlView.as_view(), name="api-ca-crl"),
    # Employees
    path("employees/", views.EmployeeListCreateView.as_view(), name="api-employee-list"),
    path("employees/<int:employee_id>/", views.EmployeeDetailView.as_view(), name="api-employee-detail"),
    path("employees/<int:employee_id>/offboard/", views.EmployeeOffboardView.as_view(), name="api-employee-offboard"),
    # Directory publications
    path("publications/", views.PublicationListView.as_view(), name="api-publication-list"),
    path("publications/<int:publication_id>/", views.PublicationDetailView.as_view(), name="api-publication-detail"),
    path(
        "publications/<int:publication_id>/retry/", views.PublicationRetryView.as_view(), name="api-publication-retry"
    ),
]
