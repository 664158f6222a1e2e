"""Settings: the directory (publishing, log-in), lockout and API throttles.

Read after authority.py (whose settings it may use); portal/settings/__init__.py collects them all.
"""

from .authority import *  # noqa: F403 - the settings so far

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
