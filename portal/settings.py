"""Settings from the environment, with safe development defaults.

PORTAL_ENVIRONMENT=development (the default) generates its own secrets under the data
directory so that `make run` needs no configuration; production refuses to start
without them.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (env(name, default) or "").split(",") if item.strip()]


ENVIRONMENT = env("PORTAL_ENVIRONMENT", "development")
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured("PORTAL_ENVIRONMENT must be 'development' or 'production'")
DEVELOPMENT = ENVIRONMENT == "development"

DATA_DIR = Path(env("PORTAL_DATA_DIR", str(BASE_DIR / "var"))).resolve()


def secret(name: str, *, generated: bool = True) -> str:
    """A secret from NAME or from the file named by NAME_FILE.

    Unset, a `generated` secret is made up in development (and required in production);
    any other is empty.
    """
    value = env(name)
    if value is None and env(f"{name}_FILE"):
        path = Path(env(f"{name}_FILE"))
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    if value or not generated:
        return value or ""
    if not DEVELOPMENT:
        raise ImproperlyConfigured(f"{name} (or {name}_FILE) must be set in production")
    # Development only: a generated secret kept beside the data, readable by us alone.
    path = DATA_DIR / "dev-secrets" / name.lower()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


SECRET_KEY = secret("PORTAL_SECRET_KEY")
DEBUG = env_bool("PORTAL_DEBUG", DEVELOPMENT)
ALLOWED_HOSTS = env_list("PORTAL_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("PORTAL_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "portal",
    "enrollment",
    "escrow",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.AuditSourceMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{DATA_DIR / 'portal.sqlite3'}",
        conn_max_age=60,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
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
SESSION_COOKIE_SECURE = env_bool("PORTAL_SECURE_COOKIES", not DEVELOPMENT)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

REST_FRAMEWORK = {
    # Basic first, so that an anonymous call gets 401 with WWW-Authenticate rather than 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.BasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "enrollment.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}

EMAIL_BACKEND = env("PORTAL_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("PORTAL_FROM_EMAIL", "pki@example.org")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("PORTAL_LOG_LEVEL", "INFO")},
}

# --- The organization and its CA -------------------------------------------------------
PORTAL_ORGANIZATION_NAME = env("PORTAL_ORGANIZATION_NAME", "Example Organization")
# organizationIdentifier as the SBR want it: scheme, country, optional +state, "-", reference.
PORTAL_ORGANIZATION_IDENTIFIER = env("PORTAL_ORGANIZATION_IDENTIFIER", "NTRUS+CA-1234567")
PORTAL_ORGANIZATION_COUNTRY = env("PORTAL_ORGANIZATION_COUNTRY", "US")
# The public base URL that certificates name for the CRL and CA certificate: plain http
# (relying parties fetch them without TLS) on a public DNS name, as the SBR require; an
# IP address or an internal name such as localhost fails the pre-issuance lint. The demo
# names example.org; a real organization points a name of its own at this portal.
PORTAL_BASE_URL = (env("PORTAL_BASE_URL", "http://pki.example.org") or "").rstrip("/")
# Mail domains the CA may certify; empty means any.
PORTAL_MAIL_DOMAINS = [d.lower() for d in env_list("PORTAL_MAIL_DOMAINS")]
PORTAL_CERTIFICATE_VALIDITY_DAYS = env_int("PORTAL_CERTIFICATE_VALIDITY_DAYS", 365)
PORTAL_PICKUP_DAYS = env_int("PORTAL_PICKUP_DAYS", 14)
PORTAL_CRL_VALIDITY_DAYS = env_int("PORTAL_CRL_VALIDITY_DAYS", 7)
PORTAL_CA_KEY_DIR = Path(env("PORTAL_CA_KEY_DIR", str(DATA_DIR / "ca"))).resolve()
# Encrypts the CA key files; never stored in the database.
PORTAL_CA_PASSPHRASE = secret("PORTAL_CA_PASSPHRASE")
# Key-encryption key of the employees' pickup copies; never stored in the database.
PORTAL_PICKUP_KEK = secret("PORTAL_PICKUP_KEK")
PORTAL_DEMO_PASSWORD = env("PORTAL_DEMO_PASSWORD", "correct-horse-battery")

# --- Directory (LDAP / Active Directory): publishing certificates -----------------------
# Without PORTAL_LDAP_URI there is no directory: nothing is published and no publication
# rows are created. Presets: "openldap" (inetOrgPerson, userCertificate;binary) and
# "activedirectory" (userCertificate, and userSMIMECertificate for Outlook). See README.md.


def env_optional_bool(name: str) -> bool | None:
    """None when unset, so that the preset decides."""
    return None if env(name) is None else env_bool(name, False)


PORTAL_LDAP_URI = env("PORTAL_LDAP_URI", "")
PORTAL_LDAP_PRESET = (env("PORTAL_LDAP_PRESET", "openldap") or "").lower()
if PORTAL_LDAP_PRESET not in {"openldap", "activedirectory"}:
    raise ImproperlyConfigured("PORTAL_LDAP_PRESET must be 'openldap' or 'activedirectory'")
PORTAL_LDAP_BIND_DN = env("PORTAL_LDAP_BIND_DN", "")
PORTAL_LDAP_BIND_PASSWORD = secret("PORTAL_LDAP_BIND_PASSWORD", generated=False)
PORTAL_LDAP_USER_BASE_DN = env("PORTAL_LDAP_USER_BASE_DN", "")
# Filters: %(user)s is the username, %(mail)s the certificate's mailbox (both escaped).
# Empty: the preset's, (uid=%(user)s) / (sAMAccountName=%(user)s) and (mail=%(mail)s).
PORTAL_LDAP_USER_FILTER = env("PORTAL_LDAP_USER_FILTER", "")
PORTAL_LDAP_MAIL_FILTER = env("PORTAL_LDAP_MAIL_FILTER", "")
# Attribute names; empty: the preset's.
PORTAL_LDAP_CERTIFICATE_ATTRIBUTE = env("PORTAL_LDAP_CERTIFICATE_ATTRIBUTE", "")
PORTAL_LDAP_SMIME_ATTRIBUTE = env("PORTAL_LDAP_SMIME_ATTRIBUTE", "")
# Also write userSMIMECertificate (PKCS#7 with the chain); unset: on for AD, off for OpenLDAP.
PORTAL_LDAP_PUBLISH_SMIME_CAPABLE = env_optional_bool("PORTAL_LDAP_PUBLISH_SMIME_CAPABLE")
PORTAL_LDAP_START_TLS = env_bool("PORTAL_LDAP_START_TLS", False)
# CA certificates (PEM) that verify the directory's TLS certificate; empty: the system's.
PORTAL_LDAP_CA_FILE = env("PORTAL_LDAP_CA_FILE", "")
# Only for tests against a directory with a throwaway certificate.
PORTAL_LDAP_TLS_VERIFY = env_bool("PORTAL_LDAP_TLS_VERIFY", True)
PORTAL_LDAP_TIMEOUT = env_int("PORTAL_LDAP_TIMEOUT", 5)  # seconds to connect
PORTAL_LDAP_RECEIVE_TIMEOUT = env_int("PORTAL_LDAP_RECEIVE_TIMEOUT", 10)  # seconds to wait for an answer
# Failed attempts are retried after base, 2×base, 4×base … seconds, at most max apart.
PORTAL_LDAP_RETRY_BASE_SECONDS = env_int("PORTAL_LDAP_RETRY_BASE_SECONDS", 60)
PORTAL_LDAP_RETRY_MAX_SECONDS = env_int("PORTAL_LDAP_RETRY_MAX_SECONDS", 6 * 3600)
