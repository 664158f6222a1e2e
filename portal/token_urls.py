"""Self-service pages for API tokens; included from portal/urls.py at /tokens/ (namespace "tokens")."""

from django.urls import path

from . import token_views

urlpatterns = [
    path("", token_views.tokens, name="list"),
    path("<int:token_id>/revoke/", token_views.revoke, name="revoke"),
]
