"""Settings from the environment, with safe development defaults: Django, the pages, the API, HTTPS.

PORTAL_ENVIRONMENT=development (the default) generates its own secrets under the data
directory so that `make run` needs no configuration; production refuses to start
without them.

This module only reads and parses the environment (django-environ); whether a parsed
value makes sense is decided by the system checks in portal/checks.py, so that
`manage.py check` reports every problem at once and `check --deploy` the production ones.
"""

from pathlib import Path

import csp.constants
import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.environment import PortalEnv, secret_reader

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = PortalEnv()

# Not a system check: it decides how the rest is read (secrets generated or required).
ENVIRONMENT = env.str("PORTAL_ENVIRONMENT", default="development")
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured("PORTAL_ENVIRONMENT must be 'development' or 'production'")
DEVELOPMENT = ENVIRONMENT == "development"

DATA_DIR = Path(env.str("PORTAL_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()
# A secret from NAME or NAME_FILE; generated in development (portal/environment.py).
secret = secret_reader(env, development=DEVELOPMENT, data_dir=DATA_DIR)

SECRET_KEY = secret("PORTAL_SECRET_KEY")
DEBUG = env.bool("PORTAL_DEBUG", default=DEVELOPMENT)
ALLOWED_HOSTS = env.list("PORTAL_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("PORTAL_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # django.contrib.admin, whose site asks trusted roles for their second factor (portal/admin_site.py).
    "portal.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "csp",  # Content-Security-Policy (CONTENT_SECURITY_POLICY below), and its checks of that setting
    # Second factor (portal/second_factor.py): TOTP authenticator apps and static recovery codes.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "portal",
    "audit",
    "enrollment",
    "escrow",
    # Mail with links for every step that waits for a person: an outbox (enrollment/notifications/).
    "enrollment.notifications",
    # Lockout after repeated failed log-ins (portal/lockout.py); its receivers run after audit's.
    "axes",
]

MIDDLEWARE = [
    # First: the client's address (REMOTE_ADDR) and scheme from a trusted proxy only (audit/middleware.py).
    "audit.middleware.AuditSourceMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise, so that static files get the headers too.
    "csp.middleware.CSPMiddleware",
    "portal.security_headers.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Outside all that reads the database: an outage is a 503 (JSON under /api/), /api/ errors JSON (core/outage.py).
    "core.outage.OutageMiddleware",
    "portal.middleware.RejectNulCharactersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.sessions.SessionPolicyMiddleware",
    "portal.second_factor_guards.SecondFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out log-in into the lockout page (portal/lockout.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal",
                "csp.context_processors.nonce",
            ],
        },
    },
]

# Seconds a database connection is kept for the next request of its thread; 0: closed after
# each request. 0 suits `runserver` (a new thread per request: kept connections would pile up
# until PostgreSQL runs out) and any server whose threads come and go; with gunicorn's sync or
# gthread workers a minute saves a connect per request and holds at most workers x threads.
# A kept connection is checked before reuse (CONN_HEALTH_CHECKS), so a restarted database costs
# no failed request. The bounds are a system check (portal.E116).
PORTAL_DB_CONN_MAX_AGE = env.int("PORTAL_DB_CONN_MAX_AGE", default=0)
DATABASES = {
    # An empty DATABASE_URL (as env files write "unset") means the embedded SQLite too.
    "default": dj_database_url.parse(
        env.str("DATABASE_URL", default="").strip() or f"sqlite:///{DATA_DIR / 'portal.sqlite3'}",
        conn_max_age=PORTAL_DB_CONN_MAX_AGE,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # BEGIN IMMEDIATE: a transaction that reads and then writes waits for the write lock (up to the
    # busy timeout) instead of failing at once with "database is locked" when another connection
    # writes: SQLite cannot upgrade a DEFERRED read lock while another writer holds the lock, and
    # skips the timeout. 15 of 20 concurrent downloads failed so (bench/cases_http.py).
    DATABASES["default"].setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 20})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve the admin's and DRF's static files straight from the installed apps.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_HTTPONLY = True
# Session rules (portal/sessions.py): idle timeouts, an absolute lifetime, and how recent the
# password must be before a private key is released (PKCS#12 and recovered-key downloads).
PORTAL_SESSION_IDLE_MINUTES_TRUSTED = env.int("PORTAL_SESSION_IDLE_MINUTES_TRUSTED", default=30)
PORTAL_SESSION_IDLE_MINUTES = env.int("PORTAL_SESSION_IDLE_MINUTES", default=240)
PORTAL_SESSION_MAX_HOURS = env.int("PORTAL_SESSION_MAX_HOURS", default=12)
PORTAL_REAUTH_MINUTES = env.int("PORTAL_REAUTH_MINUTES", default=5)
SESSION_COOKIE_AGE = PORTAL_SESSION_MAX_HOURS * 3600
SESSION_COOKIE_SECURE = env.bool("PORTAL_SECURE_COOKIES", default=not DEVELOPMENT)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- HTTPS, the reverse proxy, and what browsers may do with the pages -----------------------
# HTTPS only (in production by default): plain http is redirected, except what relying parties
# fetch over plain http by the S/MIME Baseline Requirements (7.1.2.3): the CA certificates and
# CRLs under /pki/ and the OCSP responder under /ocsp/ (enrollment/revocation/urls.py).
SECURE_SSL_REDIRECT = env.bool("PORTAL_SSL_REDIRECT", default=not DEVELOPMENT)
SECURE_REDIRECT_EXEMPT = [r"^pki/", r"^ocsp/"]
# HSTS on every answer over https: browsers then refuse plain http to this host. Production
# default a year, with subdomains and the preload token (that alone lists no site: submitting the
# domain to the browsers' preload list is a separate, deliberate step); 0 turns it off.
SECURE_HSTS_SECONDS = env.int("PORTAL_HSTS_SECONDS", default=0 if DEVELOPMENT else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("PORTAL_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("PORTAL_HSTS_PRELOAD", default=True)
# The reverse proxies in front of the portal (addresses or networks, e.g. "127.0.0.1,10.0.8.0/24"):
# only from them are X-Forwarded-For (the client's address for the audit log, the lockout and the
# throttles) and X-Forwarded-Proto (https) believed; audit/middleware.py. Empty: no proxy.
PORTAL_TRUSTED_PROXIES = env.list("PORTAL_TRUSTED_PROXIES", default=[])
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PORTAL_TRUSTED_PROXIES else None
# Content-Security-Policy (django-csp): everything from this origin, no inline script or style
# except an element that carries the request's nonce (templates use {{ request.csp_nonce }}), no
# plugins, no framing, forms only to this origin. Swagger UI and ReDoc load from the sidecar's
# static files under the same policy (templates/drf_spectacular/). data: images: Swagger's icons
# and the admin's; blob: workers: ReDoc's search index. The two hashes are the <style> elements the
# ReDoc bundle inserts as it loads, before its nonce option is read (one empty, one its scrollbar
# CSS): a hash admits that exact text only. A new sidecar version may change them; the browser test
# tests/e2e/test_browser_csp.py then names the new hash.
REDOC_STYLE_HASHES = [
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'none'"],
        "script-src": ["'self'", csp.constants.NONCE],
        "style-src": ["'self'", csp.constants.NONCE, *REDOC_STYLE_HASHES],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "manifest-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    },
}
# Permissions-Policy (portal/security_headers.py): no powerful feature for anyone.
PORTAL_PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer", "camera", "display-capture", "geolocation", "gyroscope", "hid", "magnetometer",
        "microphone", "midi", "payment", "publickey-credentials-get", "serial", "usb", "xr-spatial-tracking",
    )
}

REST_FRAMEWORK = {
    # Basic first, so that an anonymous call gets 401 with WWW-Authenticate rather than 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.authentication.BasicAuthentication",
        "portal.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Views that name their own permission classes start from these (core.api.permissions.with_default_permissions).
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "portal.second_factor_guards.SecondFactorForTrustedRoles",
    ],
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON bounded in size and depth, with only real characters (core/api/parsers.py); forms as DRF's.
    "DEFAULT_PARSER_CLASSES": [
        "core.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": None,
    # Every list: ?page=N&page_size=M (at most 200), in a stable order.
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.PortalPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Per client address (anonymous) and per account: PORTAL_API_THROTTLE_ANON / _USER, read on
    # each request (portal/throttling.py). The address is REMOTE_ADDR, as for the audit log and the
    # lockout: with NUM_PROXIES unset DRF would believe any X-Forwarded-For a client sends.
    "DEFAULT_THROTTLE_CLASSES": [
        "portal.throttling.AnonymousRateThrottle",
        "portal.throttling.AccountRateThrottle",
    ],
    "NUM_PROXIES": 0,
}

# OpenAPI 3 at /api/v1/schema/, Swagger UI at /api/v1/docs/ from the sidecar package (no CDN).
SPECTACULAR_SETTINGS = {
    "TITLE": "S/MIME portal API",
    "DESCRIPTION": "Enrollment, certificates, CAs, employees, directory publication, key recovery and audit. "
    "Errors (every 4xx): {\"error\": {\"code\", \"message\", \"fields\"}}.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "CertificateStatusEnum": "enrollment.models.Certificate.Status",
        "RequestStateEnum": "enrollment.models.CertificateRequest.State",
        "PublicationStateEnum": "enrollment.models.DirectoryPublication.State",
    },
    # Every operation may answer 429 (API throttles, log-in lockout): core/api/schema.py.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.document_too_many_requests",
    ],
}

EMAIL_BACKEND = env.str("PORTAL_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("PORTAL_FROM_EMAIL", default="pki@example.org")
# SMTP (with PORTAL_EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend).
EMAIL_HOST = env.str("PORTAL_EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("PORTAL_EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("PORTAL_EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = secret("PORTAL_EMAIL_HOST_PASSWORD", generated=False)
EMAIL_USE_TLS = env.bool("PORTAL_EMAIL_USE_TLS", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("PORTAL_LOG_LEVEL", default="INFO")},
}
