"""System checks of the portal's settings: `manage.py check`, and with `--deploy` the production ones.

settings.py only parses the environment. Whether a parsed value makes sense is decided here,
so that one run names every bad setting (with an id, e.g. portal.E004) instead of the first
one stopping the import, and `check --deploy` tells a production configuration that is
still the demo's. The deploy checks and production guardrails are in portal/checks_deploy.py;
both modules are registered from PortalConfig.ready().
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.core.checks import Warning as CheckWarning

from audit.keys import keyring_problems
from enrollment.pki.profiles import (
    MAX_VALIDITY_DAYS,
    Organization,
    validate_organization,
)

SETTINGS_TAG = "portal_settings"
# Demo values that work in development but spoil what the portal issues (portal.W001): shown by
# `manage.py check`, `migrate` and `runserver` (so by `make run`); production refuses them (portal.E102).
PLACEHOLDER_TAG = "portal_placeholders"
# Refusals of a production configuration (DEBUG, cookies, weak secrets, placeholder URLs): run by
# `check --deploy`, and by a WSGI server in production (settings_problems); silent in development.
PRODUCTION_TAG = "portal_production"

OCSP_SIGNERS = ("delegated", "ca")
# SBR 4.9.10: an OCSP response's nextUpdate is 8 hours to 10 days after its thisUpdate.
OCSP_VALIDITY_HOURS_MIN, OCSP_VALIDITY_HOURS_MAX = 8, 240
OCSP_RESPONDER_VALIDITY_DAYS_MAX = 365
LDAP_PRESETS = ("openldap", "activedirectory")
LOCKOUT_COOLOFF_MINUTES_MAX = 7 * 24 * 60
DB_CONN_MAX_AGE_MAX = 3600
# Secrets production refuses when they are evidently not 32 random bytes (portal.E112): the
# environment variable, and the setting it goes to. The audit chain key has its own check (portal.E030).
STRONG_SECRETS = (
    ("PORTAL_SECRET_KEY", "SECRET_KEY"),
    ("PORTAL_CA_PASSPHRASE", "PORTAL_CA_PASSPHRASE"),
    ("PORTAL_PICKUP_KEK", "PORTAL_PICKUP_KEK"),
    ("PORTAL_AUDIT_ANCHOR_KEY", "PORTAL_AUDIT_ANCHOR_KEY"),
)
SECRET_MIN_CHARACTERS = 43  # 32 bytes in base64url
SECRET_MIN_DISTINCT_CHARACTERS = 10
# What DRF's throttles parse ("N/" and a period they read by its first letter), or "off".
API_THROTTLE_RATE = re.compile(r"^(?:[1-9][0-9]*/(?:second|minute|hour|day)|off)$", re.IGNORECASE)

# The demo's organization and CA URL: fine for `make run`, wrong in every real certificate.
EXAMPLE_ORGANIZATION_NAME = "Example Organization"
EXAMPLE_ORGANIZATION_IDENTIFIER = "NTRUS+CA-1234567"
# RFC 2606 names that never belong to a real organization.
RESERVED_EXAMPLE_DOMAINS = ("example.org", "example.com", "example.net", "example")
# Mail backends that never deliver: nobody would get an expiry notice or a recovery mail.
UNDELIVERING_EMAIL_BACKENDS = (
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
)

Messages = list[CheckMessage]


def _setting(name: str) -> Any:
    return getattr(settings, name)


def _is_whole_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _is_reserved_example_host(host: str) -> bool:
    return any(host == domain or host.endswith(f".{domain}") for domain in RESERVED_EXAMPLE_DOMAINS)


def _is_loopback_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- Values of settings: `manage.py check` (and `migrate`, `runserver`) -------------------


# The longest validity that lints clean: pkilint warns at exactly the SBR maximum
# (certificate_validity_period_at_maximum), and the pre-issuance gate refuses WARNINGs.
CERTIFICATE_VALIDITY_DAYS_MAX = MAX_VALIDITY_DAYS - 1


@register(SETTINGS_TAG)
def check_certificate_validity_days(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    days = _setting("PORTAL_CERTIFICATE_VALIDITY_DAYS")
    if _is_whole_number(days) and 1 <= days <= CERTIFICATE_VALIDITY_DAYS_MAX:
        return []
    return [
        Error(
            f"PORTAL_CERTIFICATE_VALIDITY_DAYS must be 1 to {CERTIFICATE_VALIDITY_DAYS_MAX}, not {days!r}.",
            hint=f"The S/MIME Baseline Requirements (6.3.2) allow at most {MAX_VALIDITY_DAYS} days, and pkilint "
            f"warns at exactly {MAX_VALIDITY_DAYS} (the pre-issuance lint refuses warnings); the default is 365.",
            id="portal.E001",
        )
    ]


@register(SETTINGS_TAG)
def check_recovery_approvals(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    approvals = _setting("PORTAL_RECOVERY_APPROVALS")
    if _is_whole_number(approvals) and approvals >= 1:
        return []
    return [
        Error(
            f"PORTAL_RECOVERY_APPROVALS must be at least 1, not {approvals!r}.",
            hint="The number of distinct approvers a key recovery request needs; the default is 2.",
            id="portal.E002",
        )
    ]


@register(SETTINGS_TAG)
def check_recovery_approval_days(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    days = _setting("PORTAL_RECOVERY_APPROVAL_DAYS")
    if _is_whole_number(days) and 1 <= days <= 90:
        return []
    return [
        Error(
            f"PORTAL_RECOVERY_APPROVAL_DAYS must be between 1 and 90, not {days!r}.",
            hint="How long an approved key recovery waits for an agent before it expires; the default is 7.",
            id="portal.E009",
        )
    ]


@register(SETTINGS_TAG)
def check_ocsp_signer(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    signer = _setting("PORTAL_OCSP_SIGNER")
    if signer in OCSP_SIGNERS:
        return []
    return [
        Error(
            f"PORTAL_OCSP_SIGNER must be 'delegated' or 'ca', not {signer!r}.",
            hint="'delegated': a short-lived responder certificate the CA issues signs the responses "
            "(the default); 'ca': the CA key signs them.",
            id="portal.E003",
        )
    ]


@register(SETTINGS_TAG)
def check_ocsp_validity_hours(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    hours = _setting("PORTAL_OCSP_VALIDITY_HOURS")
    if _is_whole_number(hours) and OCSP_VALIDITY_HOURS_MIN <= hours <= OCSP_VALIDITY_HOURS_MAX:
        return []
    return [
        Error(
            f"PORTAL_OCSP_VALIDITY_HOURS must be between {OCSP_VALIDITY_HOURS_MIN} and "
            f"{OCSP_VALIDITY_HOURS_MAX}, not {hours!r}.",
            hint="The S/MIME Baseline Requirements (4.9.10) put an OCSP response's nextUpdate 8 hours "
            "to 10 days out; the default is 24.",
            id="portal.E004",
        )
    ]


@register(SETTINGS_TAG)
def check_ocsp_responder_validity_days(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    days = _setting("PORTAL_OCSP_RESPONDER_VALIDITY_DAYS")
    response_hours = _setting("PORTAL_OCSP_VALIDITY_HOURS")
    if not _is_whole_number(response_hours):
        response_hours = OCSP_VALIDITY_HOURS_MIN  # portal.E004 reports it; judge this one alone
    # Renewed with a third of its life left, the responder certificate must still outlive
    # every response it has signed: three response lifetimes at least.
    if _is_whole_number(days) and 3 * response_hours <= 24 * days <= 24 * OCSP_RESPONDER_VALIDITY_DAYS_MAX:
        return []
    return [
        Error(
            "PORTAL_OCSP_RESPONDER_VALIDITY_DAYS must be 1 to 365 and cover 3 response lifetimes, "
            f"not {days!r} (responses last {response_hours} hours).",
            hint="The delegated responder certificate is renewed with a third of its life left and must "
            "outlive the responses it signed; the default is 30.",
            id="portal.E005",
        )
    ]


@register(SETTINGS_TAG)
def check_expiry_notice_days(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    thresholds = _setting("PORTAL_EXPIRY_NOTICE_DAYS")
    bad = [days for days in thresholds if not (_is_whole_number(days) and days >= 0)]
    if not bad:
        return []
    return [
        Error(
            f"PORTAL_EXPIRY_NOTICE_DAYS must be whole numbers of days, 0 or more, not {bad!r}.",
            hint="Comma-separated days before expiry at which owners are mailed, e.g. '30,7,1' (the default).",
            id="portal.E006",
        )
    ]


@register(SETTINGS_TAG)
def check_ldap_preset(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    preset = _setting("PORTAL_LDAP_PRESET")
    if preset in LDAP_PRESETS:
        return []
    return [
        Error(
            f"PORTAL_LDAP_PRESET must be 'openldap' or 'activedirectory', not {preset!r}.",
            hint="'openldap' (inetOrgPerson, the default) or 'activedirectory'.",
            id="portal.E007",
        )
    ]


@register(SETTINGS_TAG)
def check_organization(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    # The same rules issuance applies, so that a bad subject shows before the first CA or certificate.
    organization = Organization(
        name=_setting("PORTAL_ORGANIZATION_NAME"),
        organization_identifier=_setting("PORTAL_ORGANIZATION_IDENTIFIER"),
        country=_setting("PORTAL_ORGANIZATION_COUNTRY"),
    )
    try:
        validate_organization(organization)
    except ValueError as exc:
        return [
            Error(
                f"PORTAL_ORGANIZATION_NAME, _IDENTIFIER and _COUNTRY do not make a valid subject: {exc}.",
                hint="A name of at most 64 characters, an upper-case ISO 3166 country code, and an SBR "
                "organizationIdentifier with the same country, e.g. 'NTRDE-HRB12345' with 'DE'.",
                id="portal.E008",
            )
        ]
    return []


@register(SETTINGS_TAG)
def check_lockout_cooloff_minutes(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    minutes = _setting("PORTAL_LOCKOUT_COOLOFF_MINUTES")
    if _is_whole_number(minutes) and 1 <= minutes <= LOCKOUT_COOLOFF_MINUTES_MAX:
        return []
    return [
        Error(
            f"PORTAL_LOCKOUT_COOLOFF_MINUTES must be between 1 and {LOCKOUT_COOLOFF_MINUTES_MAX}, not {minutes!r}.",
            hint="How long log-in stays locked after the fifth failed attempt (an administrator can unlock "
            "sooner with `manage.py unlock_account`); the default is 30.",
            id="portal.E020",
        )
    ]


@register(SETTINGS_TAG)
def check_api_throttle_rates(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    problems = []
    for name in ("PORTAL_API_THROTTLE_ANON", "PORTAL_API_THROTTLE_USER"):
        rate = _setting(name)
        if isinstance(rate, str) and API_THROTTLE_RATE.match(rate.strip()):
            continue
        problems.append(
            Error(
                f"{name} must be a number of requests per second, minute, hour or day, or 'off', not {rate!r}.",
                hint="For example '300/minute' (the default for anonymous clients) or '1200/minute' (per account).",
                id="portal.E021",
            )
        )
    return problems


@register(SETTINGS_TAG)
def check_audit_chain_keys(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    # Production requires the key (settings.py fails without it); here: long enough, and the ids well-formed.
    problems = keyring_problems(
        current_id=_setting("PORTAL_AUDIT_CHAIN_KEY_ID"),
        current_key=_setting("PORTAL_AUDIT_CHAIN_KEY"),
        retired=_setting("PORTAL_AUDIT_CHAIN_RETIRED_KEYS"),
    )
    return [
        Error(
            f"{problem}.",
            hint="The audit chain's HMAC keys (audit/keys.py): at least 32 random bytes each, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`, kept outside the database.",
            id="portal.E030",
        )
        for problem in problems
    ]


@register(SETTINGS_TAG)
def check_audit_checkpoint_seconds(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    seconds = _setting("PORTAL_AUDIT_CHECKPOINT_SECONDS")
    if _is_whole_number(seconds) and 10 <= seconds <= 3600:
        return []
    return [
        Error(
            f"PORTAL_AUDIT_CHECKPOINT_SECONDS must be between 10 and 3600, not {seconds!r}.",
            hint="How often the audit chain's head is anchored outside the database; the default is 300.",
            id="portal.E031",
        )
    ]


@register(SETTINGS_TAG)
def check_trusted_proxies(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    bad = []
    for entry in _setting("PORTAL_TRUSTED_PROXIES"):
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            bad.append(entry)
    if not bad:
        return []
    return [
        Error(
            f"PORTAL_TRUSTED_PROXIES must be IP addresses or networks, not {bad!r}.",
            hint="The reverse proxies in front of the portal, e.g. '127.0.0.1' or '10.0.8.0/24': only their "
            "X-Forwarded-For and X-Forwarded-Proto are believed. Empty (the default): no proxy.",
            id="portal.E115",
        )
    ]


@register(SETTINGS_TAG)
def check_database_connection_age(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    age = _setting("PORTAL_DB_CONN_MAX_AGE")
    if _is_whole_number(age) and 0 <= age <= DB_CONN_MAX_AGE_MAX:
        return []
    return [
        Error(
            f"PORTAL_DB_CONN_MAX_AGE must be 0 to {DB_CONN_MAX_AGE_MAX} seconds, not {age!r}.",
            hint="0 (the default) closes each request's database connection, right for `runserver`; "
            "about 60 suits gunicorn's sync or gthread workers (at most workers x threads connections).",
            id="portal.E116",
        )
    ]


@register(PLACEHOLDER_TAG)
def check_base_url_placeholder_in_development(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    base_url = _setting("PORTAL_BASE_URL")
    if _setting("ENVIRONMENT") == "production" or not _is_reserved_example_host(_host(base_url)):
        return []  # production refuses it outright (portal.E102)
    return [
        CheckWarning(
            f"PORTAL_BASE_URL is {base_url!r}, a placeholder: every certificate issued now names it for its CRL "
            "and CA certificate, forever.",
            hint="No client that checks revocation (Exchange Online, Gmail, Outlook) can ever verify such a "
            "certificate: fine for a demo, never for a pilot with real mailboxes. Set PORTAL_BASE_URL to the "
            "http:// URL of a public DNS name that serves this portal's /pki/ before issuing certificates "
            "anyone will use.",
            id="portal.W001",
        )
    ]
