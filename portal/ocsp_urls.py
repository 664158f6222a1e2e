"""OCSP responder routes (RFC 6960 appendix A): POST /ocsp/<ca> and GET /ocsp/<ca>/<base64 request>."""

from django.urls import path

from . import ocsp_views

urlpatterns = [
    path("<slug:slug>", ocsp_views.ocsp, name="ocsp"),
    path("<slug:slug>/", ocsp_views.ocsp),
    path("<slug:slug>/<path:encoded>", ocsp_views.ocsp, name="ocsp-get"),
]
