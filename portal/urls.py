from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from core.api.errors import api_not_found

from . import api, install_views, mail_setup, views

portal_patterns = [
    path("", views.home, name="home"),
    path("request/", views.request_certificate, name="request"),
    path("certificates/<str:serial>/pkcs12/", views.download_pkcs12, name="pkcs12"),
    path("certificates/<str:serial>/revoke/", views.revoke_own_certificate, name="revoke"),
    path("certificates/<str:serial>/renew/", views.renew_certificate, name="renew"),
    path("certificates/<str:serial>.<str:fmt>", views.download_certificate, name="certificate"),
    path("ca-chain.pem", views.ca_chain, name="ca-chain"),
    path("help/install/", install_views.install_help, name="install"),
    path("help/install/<slug:client>/", install_views.install_client, name="install-client"),
    path("staff/mail-setup/", mail_setup.mail_setup, name="mail-setup"),
    path("staff/mail-setup/<str:filename>", mail_setup.mail_setup_file, name="mail-setup-file"),
]

urlpatterns = [
    path("", include((portal_patterns, "portal"))),
    path("login/", auth_views.LoginView.as_view(template_name="portal/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("logout/everywhere/", views.log_out_everywhere, name="logout-everywhere"),
    path("reauthenticate/", views.reauthenticate, name="reauthenticate"),
    path("second-factor/", include(("portal.second_factor_urls", "second_factor"))),
    path("", include("enrollment.revocation.urls")),
    path("api/v1/", include("enrollment.api.urls")),
    path("api/v1/tokens/", api.TokenListCreateView.as_view(), name="api-token-list"),
    path("api/v1/tokens/<int:token_id>/", api.TokenDetailView.as_view(), name="api-token-detail"),
    path("api/v1/", include("escrow.api.recovery_urls")),
    path("api/v1/", include("audit.api.urls")),
    path("recovery/", include(("escrow.urls", "escrow"))),
    path("tokens/", include(("portal.token_urls", "tokens"))),
    path("admin/", admin.site.urls),
    # Last: under /api/, an address that names nothing is a JSON 404, DEBUG or not (core/api/errors.py).
    re_path(r"^api/(?P<path>.*)$", api_not_found, name="api-not-found"),
]

admin.site.site_header = "S/MIME portal administration"
admin.site.site_title = "S/MIME portal"

# Under /api/, a URL that names nothing answers in the API's JSON error shape too.
handler404 = "core.api.errors.page_not_found"
