"""System checks of a production deployment: `manage.py check --deploy`, and the guardrails that
refuse a production configuration (also when a WSGI server starts: settings_problems).

The checks of single values, and the helpers and tags, are in portal/checks.py; both modules are
registered from PortalConfig.ready().
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register, run_checks
from django.core.checks import Warning as CheckWarning

from .checks import (
    EXAMPLE_ORGANIZATION_IDENTIFIER,
    EXAMPLE_ORGANIZATION_NAME,
    PRODUCTION_TAG,
    SECRET_MIN_CHARACTERS,
    SECRET_MIN_DISTINCT_CHARACTERS,
    SETTINGS_TAG,
    STRONG_SECRETS,
    UNDELIVERING_EMAIL_BACKENDS,
    Messages,
    _host,
    _is_loopback_host,
    _is_reserved_example_host,
    _setting,
)

# --- A production deployment: `manage.py check --deploy` ----------------------------------


@register(SETTINGS_TAG, deploy=True)
def check_production_environment(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    if _setting("ENVIRONMENT") == "production":
        return []
    return [
        Error(
            "PORTAL_ENVIRONMENT is not 'production'.",
            hint="Development generates its secrets under the data directory and turns DEBUG on; "
            "set PORTAL_ENVIRONMENT=production and the secrets (or their *_FILE variants).",
            id="portal.E101",
        )
    ]


@register(SETTINGS_TAG, deploy=True)
def check_base_url_is_not_the_example(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    base_url = _setting("PORTAL_BASE_URL")
    if not _is_reserved_example_host(_host(base_url)):
        return []
    return [
        Error(
            f"PORTAL_BASE_URL is {base_url!r}, a reserved example name.",
            hint="Every certificate names this URL for its CRL and CA certificate: point a public DNS name "
            "of your own at this portal and set PORTAL_BASE_URL=http://that-name.",
            id="portal.E102",
        )
    ]


@register(SETTINGS_TAG, deploy=True)
def check_organization_is_not_the_example(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    still_example = [
        name
        for name, example in (
            ("PORTAL_ORGANIZATION_NAME", EXAMPLE_ORGANIZATION_NAME),
            ("PORTAL_ORGANIZATION_IDENTIFIER", EXAMPLE_ORGANIZATION_IDENTIFIER),
        )
        if _setting(name) == example
    ]
    if not still_example:
        return []
    return [
        Error(
            f"The demo's organization is still configured: {', '.join(still_example)}.",
            hint="They go into the subject of the CA and of every certificate: set your organization's "
            "name and its registration number (organizationIdentifier).",
            id="portal.E103",
        )
    ]


@register(SETTINGS_TAG, deploy=True)
def check_directory_tls_is_verified(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    if not _setting("PORTAL_LDAP_URI") or _setting("PORTAL_LDAP_TLS_VERIFY"):
        return []
    return [
        Error(
            "PORTAL_LDAP_TLS_VERIFY is off: the directory's TLS certificate is not verified.",
            hint="Anyone between the portal and the directory could read the passwords; give the directory's "
            "CA in PORTAL_LDAP_CA_FILE instead and leave verification on.",
            id="portal.E104",
        )
    ]


@register(SETTINGS_TAG, deploy=True)
def check_directory_uses_tls(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    uri = _setting("PORTAL_LDAP_URI").strip().lower()
    if not uri.startswith("ldap://") or _setting("PORTAL_LDAP_START_TLS"):
        return []
    return [
        Error(
            "PORTAL_LDAP_URI is plain ldap:// without PORTAL_LDAP_START_TLS.",
            hint="Log-ins bind with the employee's password and publishing with the bind password, both in "
            "clear on this connection: use ldaps:// or set PORTAL_LDAP_START_TLS=true.",
            id="portal.E105",
        )
    ]


@register(SETTINGS_TAG, deploy=True)
def check_site_url_is_reachable(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    site_url = _setting("PORTAL_SITE_URL")
    if not _is_loopback_host(_host(site_url)):
        return []
    return [
        CheckWarning(
            f"PORTAL_SITE_URL is {site_url!r}, a loopback address.",
            hint="Links in the mail to employees (expiry notices, recovery) lead there; set the URL at which "
            "employees reach the portal.",
            id="portal.W101",
        )
    ]


@register(SETTINGS_TAG, deploy=True)
def check_mail_is_delivered(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    backend = _setting("EMAIL_BACKEND")
    if backend not in UNDELIVERING_EMAIL_BACKENDS:
        return []
    return [
        CheckWarning(
            f"PORTAL_EMAIL_BACKEND is {backend!r}, which delivers no mail.",
            hint="Owners would get no expiry notices or key recovery mail; set "
            "PORTAL_EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and PORTAL_EMAIL_HOST.",
            id="portal.W102",
        )
    ]


# --- Production guardrails: refused in production (`check --deploy`, and a WSGI server) ----


def _production() -> bool:
    return _setting("ENVIRONMENT") == "production"


def secret_strength_problem(value: str) -> str | None:
    """Why `value` is not (evidently) at least 32 random bytes; None when it may be.

    Randomness cannot be measured from one value; length and variety can: 43 characters are 32
    bytes in base64url (secrets.token_urlsafe(32)), 64 in hex; a value with few distinct characters
    is a word or a pattern, not a random string.
    """
    if len(value) < SECRET_MIN_CHARACTERS:
        return f"{len(value)} character{'' if len(value) == 1 else 's'} long, fewer than {SECRET_MIN_CHARACTERS}"
    if len(set(value)) < SECRET_MIN_DISTINCT_CHARACTERS:
        return f"made of only {len(set(value))} distinct characters"
    return None


@register(PRODUCTION_TAG, Tags.security, deploy=True)
def check_production_debug(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    if not _production() or not _setting("DEBUG"):
        return []
    return [
        Error(
            "PORTAL_DEBUG is on in production.",
            hint="DEBUG shows tracebacks with settings and request data to anyone who makes the portal fail, "
            "and keeps every SQL query in memory: unset PORTAL_DEBUG (production's default is off).",
            id="portal.E110",
        )
    ]


@register(PRODUCTION_TAG, Tags.security, deploy=True)
def check_production_cookies(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    insecure = [
        name
        for name in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY")
        if not _setting(name)
    ]
    if not _production() or not insecure:
        return []
    return [
        Error(
            f"Cookies are not secure in production: {', '.join(insecure)} off.",
            hint="The session cookie would travel over plain http (or be readable by scripts): unset "
            "PORTAL_SECURE_COOKIES (production's default is on) and serve the portal over https.",
            id="portal.E111",
        )
    ]


@register(PRODUCTION_TAG, Tags.security, deploy=True)
def check_production_secrets(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    if not _production():
        return []
    problems = []
    for name, setting in STRONG_SECRETS:
        value = _setting(setting)
        problem = secret_strength_problem(value) if isinstance(value, str) else "not a string"
        if problem is None:
            continue
        problems.append(
            Error(
                f"{name} is {problem}: not a secret of at least 32 random bytes.",
                hint=f"Generate one with `python -c 'import secrets; print(secrets.token_urlsafe(48))'` and set "
                f"{name} (or {name}_FILE, a file holding it).",
                id="portal.E112",
            )
        )
    return problems


@register(PRODUCTION_TAG, deploy=True)
def check_production_site_url(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> Messages:
    site_url = _setting("PORTAL_SITE_URL")
    if not _production() or not _is_reserved_example_host(_host(site_url)):
        return []
    return [
        Error(
            f"PORTAL_SITE_URL is {site_url!r}, a reserved example name.",
            hint="Links in the mail to employees lead there: set the https:// URL at which employees reach "
            "the portal.",
            id="portal.E113",
        )
    ]


def settings_problems() -> list[CheckMessage]:
    """The serious findings of the checks above, for a server started without manage.py.

    In production that includes the deploy checks: a WSGI server refuses what `check --deploy` does.
    """
    messages = run_checks(tags=[SETTINGS_TAG, PRODUCTION_TAG], include_deployment_checks=_production())
    return [message for message in messages if message.is_serious()]
