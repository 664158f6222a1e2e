"""The second-factor pages (portal/second_factor_views.py), included at /second-factor/ by portal/urls.py.

The set-up page is the root: second_factor_guards lets everything under it through.
"""

from django.urls import path

from . import second_factor_views

urlpatterns = [
    path("", second_factor_views.setup, name="setup"),
    path("verify/", second_factor_views.verify, name="verify"),
]
