"""Settings: the organization, its CA, recovery, OCSP, the audit log's keys and the second factor.

Read after base.py (whose settings it may use); portal/settings/__init__.py collects them all.
"""

from .base import *  # noqa: F403 - the settings so far

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
# Bulk enrollment (`manage.py enroll`, the admin's and the API's batches): whether the requests of a
# batch that a PKI administrator starts are approved by policy at once (audited request.auto_approved,
# naming the batch) instead of waiting for a second person. Off: every request waits for an approver.
PORTAL_ENROLLMENT_AUTO_APPROVE = env.bool("PORTAL_ENROLLMENT_AUTO_APPROVE", default=False)
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
# The audit chain (audit/keys.py): each event's hash is an HMAC-SHA256 under the current key, whose
# id every event records; retired keys ("id:key,id:key") still verify the events they hashed.
PORTAL_AUDIT_CHAIN_KEY = secret("PORTAL_AUDIT_CHAIN_KEY")
PORTAL_AUDIT_CHAIN_KEY_ID = env.str("PORTAL_AUDIT_CHAIN_KEY_ID", default="1")
PORTAL_AUDIT_CHAIN_RETIRED_KEYS = secret("PORTAL_AUDIT_CHAIN_RETIRED_KEYS", generated=False)
# How often `celery beat` anchors the chain's head (run `audit_checkpoint` from cron as often).
PORTAL_AUDIT_CHECKPOINT_SECONDS = env.int("PORTAL_AUDIT_CHECKPOINT_SECONDS", default=300)
# The external sink (audit/sink.py): the loggers portal.audit.events (a line per event) and
# portal.audit.anchor, always at INFO, also go to syslog here (udp://host:514, tcp://host:514, /dev/log).
PORTAL_AUDIT_SYSLOG = env.str("PORTAL_AUDIT_SYSLOG", default="")
LOGGING.setdefault("loggers", {}).update(
    {
        name: {"level": "INFO", "handlers": ["audit_syslog"] if PORTAL_AUDIT_SYSLOG else []}
        for name in ("portal.audit.events", "portal.audit.anchor")
    }
)
if PORTAL_AUDIT_SYSLOG:
    LOGGING["handlers"]["audit_syslog"] = {"()": "audit.sink.syslog_handler", "address": PORTAL_AUDIT_SYSLOG}
PORTAL_DEMO_PASSWORD = env.str("PORTAL_DEMO_PASSWORD", default="correct-horse-battery")
# Second factor (portal/second_factor.py): every trusted role needs one. The demo accounts of
# `make run` are exempt in development unless PORTAL_DEMO_2FA is on; in production never.
PORTAL_DEMO_2FA = env.bool("PORTAL_DEMO_2FA", default=False)
# The name authenticator apps show beside the account.
OTP_TOTP_ISSUER = f"{PORTAL_ORGANIZATION_NAME} S/MIME portal"
# Devices are enrolled by their owner and reset with `manage.py reset_second_factor`, both audited;
# the admin does not list them (portal/admin.py), and would never show a secret.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
