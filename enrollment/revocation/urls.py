"""Routes of the public revocation endpoints, included at the site root by portal/urls.py.

/pki/<ca>.crt and /pki/<ca>.crl; OCSP (RFC 6960 appendix A): POST /ocsp/<ca> and
GET /ocsp/<ca>/<base64 request>.
"""

from django.urls import path

from . import views

# Also what portal/wsgi.py serves ahead of the middleware stack (its OCSP fast path).
ocsp_urlpatterns = [
    path("ocsp/<slug:slug>", views.ocsp, name="ocsp"),
    path("ocsp/<slug:slug>/", views.ocsp),
    path("ocsp/<slug:slug>/<path:encoded>", views.ocsp, name="ocsp-get"),
]

urlpatterns = [
    path("pki/<slug:slug>.crt", views.ca_certificate, name="ca-certificate"),
    path("pki/<slug:slug>.crl", views.ca_crl, name="ca-crl"),
    *ocsp_urlpatterns,
]
