"""Settings from the environment, with safe development defaults.

PORTAL_ENVIRONMENT=development (the default) generates its own secrets under the data
directory so that `make run` needs no configuration; production refuses to start
without them.

This module only reads and parses the environment (django-environ); whether a parsed
value makes sense is decided by the system checks in portal/checks.py, so that
`manage.py check` reports every problem at once and `check --deploy` the production ones.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.environment import PortalEnv, secret_reader

BASE_DIR = Path(__file__).resolve().parent.parent

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
    # Second factor (portal/second_factor.py): TOTP authenticator apps and static recovery codes.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "portal",
    "audit",
    "enrollment",
    "escrow",
    # Lockout after repeated failed log-ins (portal/lockout.py); its receivers run after audit's.
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.RejectNulCharactersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "audit.middleware.AuditSourceMiddleware",
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
            ],
        },
    },
]

DATABASES = {
    # An empty DATABASE_URL (as env files write "unset") means the embedded SQLite too.
    "default": dj_database_url.parse(
        env.str("DATABASE_URL", default="").strip() or f"sqlite:///{DATA_DIR / 'portal.sqlite3'}",
        conn_max_age=60,
    )
}
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

# --- The organization and its CA -------------------------------------------------------
PORTAL_ORGANIZATION_NAME = env.str("PORTAL_ORGANIZATION_NAME", default="Example Organization")
# organizationIdentifier as the SBR want it: scheme, country, optional +state, "-", reference.
PORTAL_ORGANIZATION_IDENTIFIER = env.str("PORTAL_ORGANIZATION_IDENTIFIER", default="NTRUS+CA-1234567")
PORTAL_ORGANIZATION_COUNTRY = env.str("PORTAL_ORGANIZATION_COUNTRY", default="US")
# The public base URL that certificates name for the CRL and CA certificate: plain http
# (relying parties fetch them without TLS) on a public DNS name, as the SBR require; an
# IP address or an internal name such as localhost fails the pre-issuance lint. The demo
# names example.org; a real organization points a name of its own at this portal.
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://pki.example.org").rstrip("/")
# Mail domains the CA may certify; empty means any.
PORTAL_MAIL_DOMAINS = [domain.lower() for domain in env.list("PORTAL_MAIL_DOMAINS", default=[])]
# At most 825 days (SBR 6.3.2); this and the ranges below are system checks (portal/checks.py).
PORTAL_CERTIFICATE_VALIDITY_DAYS = env.int("PORTAL_CERTIFICATE_VALIDITY_DAYS", default=365)
PORTAL_PICKUP_DAYS = env.int("PORTAL_PICKUP_DAYS", default=14)
# Key recovery: distinct approvers a recovery request needs (fixed per request when made), at least 1.
PORTAL_RECOVERY_APPROVALS = env.int("PORTAL_RECOVERY_APPROVALS", default=2)
# An approved recovery that no agent completes within this many days expires.
PORTAL_RECOVERY_APPROVAL_DAYS = env.int("PORTAL_RECOVERY_APPROVAL_DAYS", default=7)
PORTAL_CRL_VALIDITY_DAYS = env.int("PORTAL_CRL_VALIDITY_DAYS", default=7)
# OCSP responder at /ocsp/<ca>: enabled puts its URL in the AIA of new certificates.
PORTAL_OCSP_ENABLED = env.bool("PORTAL_OCSP_ENABLED", default=True)
# "delegated": a short-lived responder certificate the CA issues signs the responses; "ca": the CA key.
PORTAL_OCSP_SIGNER = env.str("PORTAL_OCSP_SIGNER", default="delegated")
# nextUpdate - thisUpdate of a response; the SBR allow 8 hours to 10 days.
PORTAL_OCSP_VALIDITY_HOURS = env.int("PORTAL_OCSP_VALIDITY_HOURS", default=24)
# 1 to 365 days, and long enough to outlive the responses it signs (see portal/checks.py).
PORTAL_OCSP_RESPONDER_VALIDITY_DAYS = env.int("PORTAL_OCSP_RESPONDER_VALIDITY_DAYS", default=30)
# Where employees reach the self-service pages, for links in mail.
PORTAL_SITE_URL = env.str("PORTAL_SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Expiry reminders: days before notAfter at which the owner is mailed, once each. A value
# with no numbers in it (" , ") means the default, as an empty one does.
PORTAL_EXPIRY_NOTICE_DAYS = env.list("PORTAL_EXPIRY_NOTICE_DAYS", cast=int, default=[]) or [30, 7, 1]
# Renewal: how long before expiry an employee may renew, and whether a renewal of an
# unchanged identity (same mailbox and names) is approved without an approver.
PORTAL_RENEWAL_WINDOW_DAYS = env.int("PORTAL_RENEWAL_WINDOW_DAYS", default=30)
PORTAL_RENEWAL_AUTO_APPROVE = env.bool("PORTAL_RENEWAL_AUTO_APPROVE", default=True)
# Key separation: a signing certificate (key never escrowed) and an encryption certificate
# (key escrowed) per request, instead of one dual-use certificate.
PORTAL_KEY_SEPARATION = env.bool("PORTAL_KEY_SEPARATION", default=False)
PORTAL_CA_KEY_DIR = Path(env.str("PORTAL_CA_KEY_DIR", default=str(DATA_DIR / "ca"))).resolve()
# Encrypts the CA key files; never stored in the database.
PORTAL_CA_PASSPHRASE = secret("PORTAL_CA_PASSPHRASE")
# CA keys in an HSM (key backend "pkcs11"): the vendor's PKCS#11 module, the token (found by
# label) that init_ca generates new CA keys in, and the token's user PIN. No default module:
# a software token must never stand in for the HSM unnoticed.
PORTAL_PKCS11_MODULE = env.str("PORTAL_PKCS11_MODULE", default="")
PORTAL_PKCS11_TOKEN_LABEL = env.str("PORTAL_PKCS11_TOKEN_LABEL", default="")
PORTAL_PKCS11_PIN = secret("PORTAL_PKCS11_PIN", generated=False)
# Key-encryption key of the employees' pickup copies; never stored in the database.
PORTAL_PICKUP_KEK = secret("PORTAL_PICKUP_KEK")
# Audit log anchors (`manage.py audit_checkpoint`): HMAC key, and the append-only file they go to
# (each also goes to the logger `portal.audit.anchor`, for syslog to ship off-host).
PORTAL_AUDIT_ANCHOR_KEY = secret("PORTAL_AUDIT_ANCHOR_KEY")
PORTAL_AUDIT_ANCHOR_FILE = Path(
    env.str("PORTAL_AUDIT_ANCHOR_FILE", default=str(DATA_DIR / "audit-anchors.jsonl"))
).resolve()
PORTAL_DEMO_PASSWORD = env.str("PORTAL_DEMO_PASSWORD", default="correct-horse-battery")
# Second factor (portal/second_factor.py): every trusted role needs one. The demo accounts of
# `make run` are exempt in development unless PORTAL_DEMO_2FA is on; in production never.
PORTAL_DEMO_2FA = env.bool("PORTAL_DEMO_2FA", default=False)
# The name authenticator apps show beside the account.
OTP_TOTP_ISSUER = f"{PORTAL_ORGANIZATION_NAME} S/MIME portal"
# Devices are enrolled by their owner and reset with `manage.py reset_second_factor`, both audited;
# the admin does not list them (portal/admin.py), and would never show a secret.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# --- Directory (LDAP / Active Directory): publishing certificates -----------------------
# Without PORTAL_LDAP_URI there is no directory: nothing is published and no publication
# rows are created. Presets: "openldap" (inetOrgPerson, userCertificate;binary) and
# "activedirectory" (userCertificate, and userSMIMECertificate for Outlook). See README.md.
PORTAL_LDAP_URI = env.str("PORTAL_LDAP_URI", default="")
PORTAL_LDAP_PRESET = env.str("PORTAL_LDAP_PRESET", default="openldap").lower()
PORTAL_LDAP_BIND_DN = env.str("PORTAL_LDAP_BIND_DN", default="")
PORTAL_LDAP_BIND_PASSWORD = secret("PORTAL_LDAP_BIND_PASSWORD", generated=False)
PORTAL_LDAP_USER_BASE_DN = env.str("PORTAL_LDAP_USER_BASE_DN", default="")
# Filters: %(user)s is the username, %(mail)s the certificate's mailbox (both escaped).
# Empty: the preset's, (uid=%(user)s) / (sAMAccountName=%(user)s) and (mail=%(mail)s).
PORTAL_LDAP_USER_FILTER = env.str("PORTAL_LDAP_USER_FILTER", default="")
PORTAL_LDAP_MAIL_FILTER = env.str("PORTAL_LDAP_MAIL_FILTER", default="")
# Attribute names; empty: the preset's.
PORTAL_LDAP_CERTIFICATE_ATTRIBUTE = env.str("PORTAL_LDAP_CERTIFICATE_ATTRIBUTE", default="")
PORTAL_LDAP_SMIME_ATTRIBUTE = env.str("PORTAL_LDAP_SMIME_ATTRIBUTE", default="")
# Also write userSMIMECertificate (PKCS#7 with the chain); unset (None): the preset decides,
# on for AD, off for OpenLDAP.
PORTAL_LDAP_PUBLISH_SMIME_CAPABLE = env.bool("PORTAL_LDAP_PUBLISH_SMIME_CAPABLE", default=None)
PORTAL_LDAP_START_TLS = env.bool("PORTAL_LDAP_START_TLS", default=False)
# CA certificates (PEM) that verify the directory's TLS certificate; empty: the system's.
PORTAL_LDAP_CA_FILE = env.str("PORTAL_LDAP_CA_FILE", default="")
# Only for tests against a directory with a throwaway certificate.
PORTAL_LDAP_TLS_VERIFY = env.bool("PORTAL_LDAP_TLS_VERIFY", default=True)
PORTAL_LDAP_TIMEOUT = env.int("PORTAL_LDAP_TIMEOUT", default=5)  # seconds to connect
PORTAL_LDAP_RECEIVE_TIMEOUT = env.int("PORTAL_LDAP_RECEIVE_TIMEOUT", default=10)  # seconds to wait for an answer
# Failed attempts are retried after base, 2×base, 4×base … seconds, at most max apart.
PORTAL_LDAP_RETRY_BASE_SECONDS = env.int("PORTAL_LDAP_RETRY_BASE_SECONDS", default=60)
PORTAL_LDAP_RETRY_MAX_SECONDS = env.int("PORTAL_LDAP_RETRY_MAX_SECONDS", default=6 * 3600)
# The CA entry that gets the issuing CA certificate and current CRL; empty: none.
PORTAL_LDAP_CA_ENTRY_DN = env.str("PORTAL_LDAP_CA_ENTRY_DN", default="")

# --- Log-in: local accounts, and directory accounts with PORTAL_LDAP_URI (portal/ldap_auth.py)
# Directory groups whose members get the portal role; empty: the directory does not decide it.
PORTAL_LDAP_APPROVERS_GROUP_DN = env.str("PORTAL_LDAP_APPROVERS_GROUP_DN", default="")
PORTAL_LDAP_AUDITORS_GROUP_DN = env.str("PORTAL_LDAP_AUDITORS_GROUP_DN", default="")
PORTAL_LDAP_ADMINS_GROUP_DN = env.str("PORTAL_LDAP_ADMINS_GROUP_DN", default="")
# Where nested groups are searched (AD preset); empty: the dc= part of PORTAL_LDAP_USER_BASE_DN.
PORTAL_LDAP_GROUP_BASE_DN = env.str("PORTAL_LDAP_GROUP_BASE_DN", default="")
# Usernames a directory log-in never creates, even before a local account of that name
# exists (a later bootstrap superuser cannot be pre-empted); local accounts are refused anyway.
PORTAL_LDAP_RESERVED_USERNAMES = env.list(
    "PORTAL_LDAP_RESERVED_USERNAMES", default=["admin", "administrator", "root", "superuser", "system"]
)
# Imported here, after the PORTAL_LDAP_* settings: it touches no models, so it is safe in settings.
from portal.ldap_auth import authentication_backends  # noqa: E402

# The lockout backend first: it refuses a locked account or source before a password is checked.
AUTHENTICATION_BACKENDS = ["portal.lockout.LockoutBackend", *authentication_backends(ldap_uri=PORTAL_LDAP_URI)]

# --- Lockout after failed log-ins (django-axes; portal/lockout.py) and API throttles ---------
# 5 failures within the cool-off lock the account, and (counted apart) 5 lock the source
# address, on every log-in surface; unknown API tokens count against their source. The lock
# ends PORTAL_LOCKOUT_COOLOFF_MINUTES after the last counted failure, or when an administrator
# unlocks (`manage.py unlock_account`, or the admin's Axes → Access attempts).
PORTAL_LOCKOUT_COOLOFF_MINUTES = env.int("PORTAL_LOCKOUT_COOLOFF_MINUTES", default=30)
AXES_FAILURE_LIMIT = 5  # the most the CA/Browser Forum's Network and Certificate System Security Requirements allow
AXES_LOCKOUT_PARAMETERS = "portal.lockout.lockout_parameters"  # ["username", "ip_address"]: either locks
AXES_USERNAME_CALLABLE = "portal.lockout.lockout_username"
AXES_CLIENT_IP_CALLABLE = "portal.lockout.client_address"  # REMOTE_ADDR, as the audit log records it
AXES_COOLOFF_TIME = "portal.lockout.cool_off"
AXES_LOCKOUT_CALLABLE = "portal.lockout.lockout_response"
# Attempts refused while locked are not counted (nor written): a flood costs reads, and the
# lock is not prolonged by it (it ends a cool-off after the fifth failure).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A success clears the account's failures (portal.lockout), not those of its source, as axes' own reset would.
AXES_RESET_ON_SUCCESS = False
# The audit log records log-ins and failed log-ins; axes keeps only the counts it locks with.
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ACCESS_FAILURE_LOG = False
AXES_ENABLE_ADMIN = False  # portal/admin.py shows the counts, with an audited unlock
AXES_VERBOSE = False
# API requests per minute (or "N/second", "N/hour", "N/day"; "off": none) per client address
# without credentials, and per account; more answer 429 (code "throttled") with Retry-After.
PORTAL_API_THROTTLE_ANON = env.str("PORTAL_API_THROTTLE_ANON", default="300/minute")
PORTAL_API_THROTTLE_USER = env.str("PORTAL_API_THROTTLE_USER", default="1200/minute")

# --- Task queue (Celery on Redis) ----------------------------------------------------------
# With PORTAL_BROKER_URL (e.g. redis://127.0.0.1:6379/0) tasks go to `celery -A portal worker`
# and `celery -A portal beat` runs the periodic jobs below. Without it, tasks run in the web
# process right after the commit that asked for them, and the periodic jobs are the
# management commands (publish_pending, refresh_crl, expire_certificates, notify_expiring,
# purge_expired_pickups) run from cron. Nothing depends on a task arriving: the database
# keeps what is due.
CELERY_BROKER_URL = env.str("PORTAL_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# A broker that is down must not hold up the request that queues a task.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BEAT_SCHEDULE = {
    "directory-publications-drain": {"task": "enrollment.directory_publications_drain", "schedule": 300.0},
    "crls-refresh": {"task": "enrollment.crls_refresh", "schedule": 3600.0},
    "certificates-expire": {"task": "enrollment.certificates_expire", "schedule": 3600.0},
    "expiry-notices-send": {"task": "enrollment.expiry_notices_send", "schedule": 6 * 3600.0},
    "pickup-copies-purge": {"task": "escrow.pickup_copies_purge_expired", "schedule": 3600.0},
    "audit-checkpoint": {"task": "audit.checkpoint", "schedule": 3600.0},
    "recoveries-expire": {"task": "escrow.recoveries_expire", "schedule": 3600.0},
}

# Uploads (a key recovery agent's PKCS#12) stay in memory and never touch the disk; a file
# over FILE_UPLOAD_MAX_MEMORY_SIZE is dropped, and the form says the file is missing.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
