"""Self-service pages for key recovery and key history; included from portal/urls.py."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("request/", views.request_own, name="request"),
    path("<int:request_id>/withdraw/", views.withdraw, name="withdraw"),
    path("<int:request_id>/pkcs12/<str:serial>/", views.download_pkcs12, name="pkcs12"),
    path("<int:request_id>/history/", views.download_history, name="history"),
]
