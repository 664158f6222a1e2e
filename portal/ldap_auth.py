"""Log-in with directory credentials (django-auth-ldap), configured from the PORTAL_LDAP_* settings.

settings.py lists the backends with `authentication_backends()`: local accounts
(ModelBackend) always, PortalLDAPBackend when PORTAL_LDAP_URI is set. The backend builds
its django-auth-ldap settings from DirectoryConfig (enrollment/directory/config.py, the
same values the publisher uses) each time it authenticates, so the URI, bind account,
user search, StartTLS/CA file and timeouts are configured once for both. Explicit
AUTH_LDAP_* Django settings, if anyone sets them, still win over the derived ones.

After a successful bind, enrollment.directory.services.directory_user_sync() copies the
entry into the Employee row and grants or takes away the roles whose group DN is set
(PORTAL_LDAP_APPROVERS_GROUP_DN, _AUDITORS_, _ADMINS_). A directory that is down or
answers with an error is a failed log-in (the login form says "wrong username or
password", the log says why), never an error page.

This module is imported by settings.py: nothing here may touch models at import time.
"""

from __future__ import annotations

import logging
import re

import ldap
import ldap.dn
from django_auth_ldap.backend import LDAPBackend
from django_auth_ldap.config import (
    GroupOfNamesType,
    LDAPGroupQuery,
    LDAPSearch,
    LDAPSettings,
    NestedActiveDirectoryGroupType,
)

from enrollment.directory.config import DirectoryConfig
from core.exceptions import ConfigurationError

logger = logging.getLogger(__name__)

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
LDAP_BACKEND = "portal.ldap_auth.PortalLDAPBackend"

# Django user field -> directory attribute (inetOrgPerson and AD name them alike).
USER_ATTR_MAP = {"first_name": "givenName", "last_name": "sn", "email": "mail"}

GROUP_TYPES = {
    "groupOfNames": GroupOfNamesType,
    "nestedActiveDirectory": NestedActiveDirectoryGroupType,
}


def authentication_backends(*, ldap_uri: str) -> list[str]:
    """Local accounts first (no directory round trip for them), then the directory if configured."""
    return [MODEL_BACKEND, LDAP_BACKEND] if (ldap_uri or "").strip() else [MODEL_BACKEND]


def normalized_dn(dn: str) -> str:
    """One spelling per DN (no blanks after commas, lower case), as django-auth-ldap compares them."""
    try:
        return ldap.dn.dn2str(ldap.dn.str2dn(dn)).lower()
    except ldap.DECODING_ERROR:
        raise ConfigurationError(f"{dn!r} is not a distinguished name") from None


def group_search_base(config: DirectoryConfig) -> str:
    """PORTAL_LDAP_GROUP_BASE_DN, else the dc= suffix of the user base DN (the naming context)."""
    if config.group_base_dn:
        return normalized_dn(config.group_base_dn)
    try:
        rdns = ldap.dn.str2dn(config.user_base_dn)
    except ldap.DECODING_ERROR:
        raise ConfigurationError(f"PORTAL_LDAP_USER_BASE_DN {config.user_base_dn!r} is not a distinguished name") from None
    suffix = [rdn for rdn in rdns if all(attribute.lower() == "dc" for attribute, _, _ in rdn)]
    return ldap.dn.dn2str(suffix) if suffix else config.user_base_dn


def role_group_dns(config: DirectoryConfig) -> dict[str, str]:
    """Role (Django group) -> the directory group DN that grants it; only configured roles."""
    from enrollment.roles import APPROVERS, AUDITORS, PKI_ADMINISTRATORS

    dns = {
        APPROVERS: config.approvers_group_dn,
        AUDITORS: config.auditors_group_dn,
        PKI_ADMINISTRATORS: config.admins_group_dn,
    }
    try:
        return {role: normalized_dn(dn) for role, dn in dns.items() if dn}
    except ConfigurationError as exc:
        raise ConfigurationError(f"A PORTAL_LDAP_*_GROUP_DN setting: {exc.message}") from None


def connection_options(config: DirectoryConfig) -> dict:
    """python-ldap options per connection: timeouts, no referral chasing (AD), TLS verification."""
    options = {
        ldap.OPT_REFERRALS: 0,
        ldap.OPT_NETWORK_TIMEOUT: config.connect_timeout,
        ldap.OPT_TIMEOUT: config.receive_timeout,
    }
    if config.uses_tls:
        options[ldap.OPT_X_TLS_REQUIRE_CERT] = ldap.OPT_X_TLS_DEMAND if config.tls_verify else ldap.OPT_X_TLS_NEVER
        if config.ca_file:
            options[ldap.OPT_X_TLS_CACERTFILE] = config.ca_file
        options[ldap.OPT_X_TLS_NEWCTX] = 0  # last: applies the TLS options above to this connection
    return options


def auth_ldap_settings(config: DirectoryConfig) -> dict:
    """The django-auth-ldap settings (AUTH_LDAP_* without the prefix) for this directory."""
    if config.group_type not in GROUP_TYPES:
        raise ConfigurationError(f"Unknown directory group type {config.group_type!r}")
    login_attribute = re.search(r"\(([\w;-]+)=%\(user\)s\)", config.user_filter)
    attributes = sorted({*USER_ATTR_MAP.values(), "cn", *(login_attribute.groups() if login_attribute else ())})
    return {
        "SERVER_URI": config.uri,
        "START_TLS": config.start_tls,
        "CONNECTION_OPTIONS": connection_options(config),
        "BIND_DN": config.bind_dn,
        "BIND_PASSWORD": config.bind_password,
        "USER_SEARCH": LDAPSearch(config.user_base_dn, ldap.SCOPE_SUBTREE, config.user_filter, attrlist=attributes),
        "USER_ATTRLIST": attributes,
        "USER_ATTR_MAP": dict(USER_ATTR_MAP),
        "ALWAYS_UPDATE_USER": True,
        "GROUP_TYPE": GROUP_TYPES[config.group_type](),
        "GROUP_SEARCH": LDAPSearch(
            group_search_base(config), ldap.SCOPE_SUBTREE, f"(objectClass={config.group_object_class})", attrlist=["cn"]
        ),
        # Roles are set by directory_user_sync from the configured DNs, not mirrored by name.
        "MIRROR_GROUPS": None,
        "FIND_GROUP_PERMS": False,
        "CACHE_TIMEOUT": 0,
    }


class PortalLDAPBackend(LDAPBackend):
    """django-auth-ldap, configured from DirectoryConfig, that also syncs the Employee row and roles."""

    @property
    def settings(self) -> LDAPSettings:
        if self._settings is None:
            config = self.directory_config()
            derived = auth_ldap_settings(config) if config is not None else {}
            self._settings = LDAPSettings(self.settings_prefix, derived)
        return self._settings

    @settings.setter
    def settings(self, value: LDAPSettings) -> None:
        self._settings = value

    @staticmethod
    def directory_config() -> DirectoryConfig | None:
        return DirectoryConfig.from_settings()

    def authenticate(self, request, username=None, password=None, **kwargs):
        try:
            if self.directory_config() is None:
                return None  # PORTAL_LDAP_URI cleared: no directory log-in
            # Validate the configuration before any network traffic.
            self.settings  # noqa: B018
            role_group_dns(self.directory_config())
        except ConfigurationError as exc:
            logger.warning("Directory log-in is not possible, check the PORTAL_LDAP_* settings: %s", exc.message)
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)

    def authenticate_ldap_user(self, ldap_user, password):
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is None:
            return None
        from enrollment.directory.services import directory_user_sync

        config = self.directory_config()
        try:
            roles = {role: bool(LDAPGroupQuery(dn).resolve(ldap_user)) for role, dn in role_group_dns(config).items()}
        except ldap.LDAPError as exc:
            # Without the groups the roles would be guessed: refuse this log-in instead.
            logger.warning(
                "Directory log-in of %s refused: reading its groups failed: %s", ldap_user.dn, describe_ldap_error(exc, config)
            )
            return None
        attributes = ldap_user.attrs or {}

        def first(name: str) -> str:
            values = attributes.get(name) or [""]
            return str(values[0]).strip()

        directory_user_sync(
            user=user,
            entry_dn=ldap_user.dn,
            roles=roles,
            mail=first("mail"),
            given_name=first("givenName"),
            surname=first("sn"),
        )
        return user


def describe_ldap_error(exc: Exception, config: DirectoryConfig | None = None) -> str:
    """python-ldap errors carry a dict (desc, info); one readable line, no credentials in it."""
    detail = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    text = str(detail.get("desc") or type(exc).__name__)
    info = str(detail.get("info") or "").strip()
    if info and info != "(unknown error code)":
        text += f" ({info})"
    if config is not None:
        text = f"{config.uri}: {text}"
        if isinstance(exc, ldap.INVALID_CREDENTIALS):
            text += "; check PORTAL_LDAP_BIND_DN and PORTAL_LDAP_BIND_PASSWORD"
        elif config.uses_tls and isinstance(exc, (ldap.SERVER_DOWN, ldap.CONNECT_ERROR)):
            text += "; with TLS, check that PORTAL_LDAP_CA_FILE holds the CA of the directory's certificate"
    return text
