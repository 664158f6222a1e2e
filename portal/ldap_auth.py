"""Log-in with directory credentials (django-auth-ldap), configured from the PORTAL_LDAP_* settings.

settings.py lists the backends with `authentication_backends()`: local accounts
(ModelBackend) always, PortalLDAPBackend when PORTAL_LDAP_URI is set. The backend builds
its django-auth-ldap settings from DirectoryConfig (enrollment/directory/config.py, the
same values the publisher uses) each time it authenticates, so the URI, bind account,
user search, StartTLS/CA file and timeouts are configured once for both. Explicit
AUTH_LDAP_* Django settings, if anyone sets them, still win over the derived ones.

Directory log-in owns only directory accounts (portal.models.DirectoryAccount): users it
created itself, and local accounts an administrator linked to one entry with
`manage.py link_directory_account`. Any other Django user of that name (the bootstrap
superuser, a break-glass or demo account) is refused before the directory is asked, and
again after the bind, so it is never logged in as nor changed (names, mail, roles); so are
superusers, names in PORTAL_LDAP_RESERVED_USERNAMES that are not linked, and a linked
account reached from another entry than the one it is linked to. Users the directory
creates get an unusable local password (the ModelBackend never logs them in).

After a successful bind, enrollment.directory.user_sync.directory_user_sync() copies the
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
from django.conf import settings as django_settings
from django.db import IntegrityError, transaction
from django_auth_ldap.backend import LDAPBackend
from django_auth_ldap.config import (
    GroupOfNamesType,
    LDAPGroupQuery,
    LDAPSearch,
    LDAPSettings,
    NestedActiveDirectoryGroupType,
)

from core.exceptions import ConfigurationError, NotAllowed, PortalError
from enrollment.directory.config import DirectoryConfig

logger = logging.getLogger(__name__)

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
LDAP_BACKEND = "portal.ldap_auth.PortalLDAPBackend"

# Django user field -> directory attribute (inetOrgPerson and AD name them alike).
USER_ATTR_MAP = {"first_name": "givenName", "last_name": "sn", "email": "mail"}

# Names a directory log-in never creates (PORTAL_LDAP_RESERVED_USERNAMES, when not set).
DEFAULT_RESERVED_USERNAMES = ("admin", "administrator", "root", "superuser", "system")
# User fields the directory never writes, whatever AUTH_LDAP_USER_ATTR_MAP or
# AUTH_LDAP_USER_FLAGS_BY_GROUP say: staff comes from the roles, superuser never.
PROTECTED_USER_FIELDS = frozenset({"username", "password", "is_superuser", "is_staff", "groups", "user_permissions"})

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


def reserved_usernames() -> set[str]:
    """PORTAL_LDAP_RESERVED_USERNAMES, case-folded (names compare like django-auth-ldap's, ignoring case)."""
    names = getattr(django_settings, "PORTAL_LDAP_RESERVED_USERNAMES", None)
    if names is None:
        names = DEFAULT_RESERVED_USERNAMES
    elif isinstance(names, str):
        names = names.split(",")
    return {str(name).strip().casefold() for name in names if str(name).strip()}


def check_user_mapping(ldap_settings: LDAPSettings) -> None:
    """Explicit AUTH_LDAP_* settings may not let the directory write who someone is or what they may do."""
    for name in ("USER_ATTR_MAP", "USER_FLAGS_BY_GROUP"):
        protected = sorted(PROTECTED_USER_FIELDS.intersection(getattr(ldap_settings, name, None) or {}))
        if protected:
            raise ConfigurationError(
                f"AUTH_LDAP_{name} may not set {', '.join(protected)}: the directory never decides those"
            )


def directory_login_refusal(users, *, username: str, entry_dn: str | None = None) -> str:
    """Why a directory log-in as `username` must not reach these Django users; empty: it may.

    `users` are the accounts of that name (none: the log-in would create one). entry_dn is
    the entry that bound, once known (a linked account belongs to its entry only).
    """
    from portal.models import DirectoryAccount

    reserved = username.strip().casefold() in reserved_usernames()
    users = list(users)
    if not users:
        return f"{username!r} is reserved (PORTAL_LDAP_RESERVED_USERNAMES)" if reserved else ""
    if len(users) > 1:
        return f"several accounts are named {username!r}"
    user = users[0]
    account = DirectoryAccount.objects.filter(user=user).first()
    if account is None:
        return (
            f"{user.get_username()!r} is a local account, not a directory account: it logs in with its local "
            "password only (an administrator may link it: manage.py link_directory_account)"
        )
    if user.is_superuser:
        return f"{user.get_username()!r} is a superuser: superusers log in with their local password only"
    linked = account.origin == DirectoryAccount.Origin.LINKED
    if reserved and not linked:
        return f"{username!r} is reserved (PORTAL_LDAP_RESERVED_USERNAMES)"
    if linked and entry_dn is not None and normalized_dn(entry_dn) != account.entry_dn:
        return f"{user.get_username()!r} is linked to {account.entry_dn}, not to {entry_dn}"
    return ""


def directory_account_link(*, user, entry_dn: str, linked_by: str = ""):
    """Let the directory entry entry_dn log in as the local account `user` (an administrator's decision).

    The account's local password becomes unusable: from now on the directory keeps it.
    Superusers are never linked. Audited as auth.directory_linked.
    """
    from audit.events import AuditAction
    from audit.services import audit_record
    from portal.models import DirectoryAccount

    if user.is_superuser:
        raise NotAllowed(
            f"{user.get_username()} is a superuser; superusers stay local accounts and never log in with a directory password"
        )
    if not (entry_dn or "").strip():
        raise PortalError("The directory entry's DN is empty")
    dn = normalized_dn(entry_dn.strip())
    config = DirectoryConfig.from_settings()
    if config is not None and config.user_base_dn:
        base = normalized_dn(config.user_base_dn)
        if dn != base and not dn.endswith("," + base):
            raise PortalError(f"{dn} is not under PORTAL_LDAP_USER_BASE_DN ({base}), where log-ins search")
    other = DirectoryAccount.objects.filter(entry_dn=dn).exclude(user=user).select_related("user").first()
    if other is not None:
        raise PortalError(f"{dn} already belongs to the account {other.user.get_username()}")
    with transaction.atomic():
        previous = DirectoryAccount.objects.filter(user=user).first()
        account, _ = DirectoryAccount.objects.update_or_create(
            user=user, defaults={"entry_dn": dn, "origin": DirectoryAccount.Origin.LINKED, "linked_by": linked_by[:150]}
        )
        user.set_unusable_password()
        user.save(update_fields=["password"])
        details = {"username": user.get_username(), "entry_dn": dn, "linked_by": linked_by}
        if previous is not None:
            details["previous"] = {"entry_dn": previous.entry_dn, "origin": previous.origin}
        audit_record(action=AuditAction.AUTH_DIRECTORY_LINKED, obj=user, details=details)
    return account


class PortalLDAPBackend(LDAPBackend):
    """django-auth-ldap, configured from DirectoryConfig, for directory accounts only; syncs the Employee row and roles."""

    @property
    def settings(self) -> LDAPSettings:
        if self._settings is None:
            config = self.directory_config()
            derived = auth_ldap_settings(config) if config is not None else {}
            built = LDAPSettings(self.settings_prefix, derived)
            check_user_mapping(built)
            self._settings = built
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
        name = kwargs.get(self.get_user_model().USERNAME_FIELD, username)
        if name is not None:
            # Before any network traffic: a local account's password (mistyped, say) never goes to the directory.
            name = self.ldap_to_django_username(str(name).strip())
            reason = directory_login_refusal(self.accounts_named(name), username=name)
            if reason:
                logger.warning("Directory log-in as %r refused: %s", name, reason)
                return None
        return super().authenticate(request, username=username, password=password, **kwargs)

    def accounts_named(self, username: str):
        model = self.get_user_model()
        return model.objects.filter(**{f"{model.USERNAME_FIELD}__iexact": username})

    def get_or_build_user(self, username, ldap_user):
        """The directory account for this entry, created if new; refuses anything else (after the bind, before any change)."""
        from portal.models import DirectoryAccount

        user, built = super().get_or_build_user(username, ldap_user)
        try:
            reason = directory_login_refusal([] if built else [user], username=username, entry_dn=ldap_user.dn)
            entry_dn = normalized_dn(ldap_user.dn)
        except ConfigurationError as exc:
            reason = exc.message
        if not reason and built and self.settings.NO_NEW_USERS:
            reason = "a new user, and AUTH_LDAP_NO_NEW_USERS is set"
        if reason:
            logger.warning("Directory log-in of %s as %r refused: %s", ldap_user.dn, username, reason)
            raise ldap_user.AuthenticationFailed(reason)
        if built:
            # The user and its DirectoryAccount together, or a half-made user would be a local account.
            user.set_unusable_password()
            try:
                with transaction.atomic():
                    user.save()
                    DirectoryAccount.objects.create(user=user, entry_dn=entry_dn, origin=DirectoryAccount.Origin.LOGIN)
            except IntegrityError:
                reason = "another log-in created the account at the same moment; try again"
                logger.warning("Directory log-in of %s as %r refused: %s", ldap_user.dn, username, reason)
                raise ldap_user.AuthenticationFailed(reason) from None
        else:
            # An account the directory created follows its entry when it moves; a linked one cannot (above).
            DirectoryAccount.objects.filter(user=user, origin=DirectoryAccount.Origin.LOGIN).exclude(
                entry_dn=entry_dn
            ).update(entry_dn=entry_dn)
        return user, built

    def get_user(self, user_id):
        """A directory session ends when its user is no longer a directory account, or became a superuser."""
        from portal.models import DirectoryAccount

        user = super().get_user(user_id)
        if user is None or user.is_superuser or not DirectoryAccount.objects.filter(user=user).exists():
            return None
        return user

    def authenticate_ldap_user(self, ldap_user, password):
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is None:
            return None
        from enrollment.directory.user_sync import directory_user_sync

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

        try:
            directory_user_sync(
                user=user,
                entry_dn=ldap_user.dn,
                roles=roles,
                mail=first("mail"),
                given_name=first("givenName"),
                surname=first("sn"),
            )
        except PortalError as exc:
            logger.warning("Directory log-in of %s refused: %s", ldap_user.dn, exc.message)
            return None
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
