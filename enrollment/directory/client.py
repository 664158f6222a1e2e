"""A small ldap3 client: one connection, entry lookup, value-exact modifications.

No Django here: it takes a DirectoryConfig and raises DirectoryError subclasses whose
messages an administrator can act on. The connection opens lazily on first use and is
reused until close(), so a batch pays for one TCP/TLS handshake and one bind.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core import exceptions as ldap_exceptions
from ldap3.utils.conv import escape_filter_chars

from core.exceptions import PortalError

from .config import DirectoryConfig

# What an administrator should check when the directory answers with these result codes.
_HINTS = {
    "invalidCredentials": "wrong bind DN or password (PORTAL_LDAP_BIND_DN / PORTAL_LDAP_BIND_PASSWORD)",
    "insufficientAccessRights": "the bind account may not write this attribute; grant it write access",
    "noSuchObject": "no such entry",
    "undefinedAttributeType": "the directory does not know this attribute; check PORTAL_LDAP_PRESET",
    "objectClassViolation": "the entry's object classes do not allow this attribute; check PORTAL_LDAP_PRESET",
    "inappropriateMatching": "the attribute has no equality rule, so single values cannot be removed",
    "confidentialityRequired": "the directory requires TLS; set PORTAL_LDAP_START_TLS or use ldaps://",
    "strongerAuthRequired": "the directory requires TLS or a stronger bind; set PORTAL_LDAP_START_TLS or use ldaps://",
    "unwillingToPerform": "the directory refused the operation",
    "invalidAttributeSyntax": (
        "the directory could not parse the value; OpenLDAP needs the organizationIdentifier attribute type "
        "to read the portal's issuer names (load enrollment/directory/openldap/organizationidentifier.ldif)"
    ),
}


class DirectoryError(PortalError):
    """The directory refused or failed one operation; other entries may still work."""

    code = "directory"
    http_status = 502


class EntryNotFound(DirectoryError):
    """No entry at that DN, or none matches the search."""

    code = "directory_entry_not_found"


class DirectoryUnavailable(DirectoryError):
    """No usable connection (unreachable, TLS failure, bind refused): every entry would fail alike."""

    code = "directory_unavailable"
    http_status = 503


def _result_text(exc: ldap_exceptions.LDAPOperationResult) -> str:
    description = exc.description or f"result {exc.result}"
    hint = _HINTS.get(description)
    text = description + (f": {hint}" if hint else "")
    detail = (exc.message or "").strip()
    return f"{text} ({detail})" if detail else text


def _oneline(value: object) -> str:
    """ldap3's socket errors nest tuples of strings; keep the words an administrator needs."""
    text = re.sub(r"\s*\(_ssl\.c:\d+\)", "", " ".join(str(value).split()))
    text = text.strip("()'\", ") or type(value).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        text += " (set PORTAL_LDAP_CA_FILE to the CA certificate that issued the directory's TLS certificate)"
    return text


@dataclass
class DirectoryEntry:
    dn: str
    # Attribute name (as the server spells it) -> raw values.
    values: dict[str, list[bytes]] = field(default_factory=dict)

    def get(self, attribute: str) -> list[bytes]:
        wanted = attribute.lower()
        for name, values in self.values.items():
            if name.lower() == wanted:
                return list(values)
        return []


@dataclass(frozen=True)
class EntryLocator:
    """How to find a person's entry: a stored DN wins; otherwise the mail filter under the base DN."""

    mail: str
    user: str = ""
    dn: str = ""


# A mail filter that is one equality on one attribute: many mailboxes can be looked up in one search.
_EQUALITY_MAIL_FILTER = re.compile(r"^\(([A-Za-z][\w-]*)=%\(mail\)s\)$")


class DirectoryClient:
    def __init__(self, config: DirectoryConfig):
        self.config = config
        self._connection: Connection | None = None

    def __enter__(self) -> DirectoryClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- connection ----------------------------------------------------------------------

    def _server(self) -> Server:
        config = self.config
        tls = None
        if config.uses_tls:
            tls = Tls(
                validate=ssl.CERT_REQUIRED if config.tls_verify else ssl.CERT_NONE,
                ca_certs_file=config.ca_file or None,
            )
        return Server(
            config.uri,
            use_ssl=config.uri.lower().startswith("ldaps://"),
            tls=tls,
            get_info=NONE,
            connect_timeout=config.connect_timeout,
        )

    @property
    def connection(self) -> Connection:
        """The bound connection, opened (StartTLS, bind) on first use."""
        if self._connection is not None and not self._connection.closed:
            return self._connection
        config = self.config
        connection = Connection(
            self._server(),
            user=config.bind_dn or None,
            password=config.bind_password or None,
            raise_exceptions=True,
            receive_timeout=config.receive_timeout,
            read_only=False,
        )
        try:
            connection.open()
            if config.start_tls:
                connection.start_tls()
            connection.bind()
        except ldap_exceptions.LDAPOperationResult as exc:
            self._discard(connection)
            who = f"as {config.bind_dn}" if config.bind_dn else "anonymously"
            raise DirectoryUnavailable(f"{config.uri}: bind {who} refused: {_result_text(exc)}") from None
        except (ldap_exceptions.LDAPException, OSError) as exc:
            self._discard(connection)
            if isinstance(exc, ldap_exceptions.LDAPStartTLSError):
                step = "StartTLS failed"
            elif isinstance(exc, (ldap_exceptions.LDAPSocketReceiveError, ldap_exceptions.LDAPResponseTimeoutError)):
                step = f"no answer within {config.receive_timeout} s"
            else:
                step = "cannot connect"
            raise DirectoryUnavailable(f"{config.uri}: {step}: {_oneline(exc)}") from None
        if not connection.bound:
            self._discard(connection)
            raise DirectoryUnavailable(f"{config.uri}: bind failed: {_oneline(connection.result)}")
        self._connection = connection
        return connection

    @staticmethod
    def _discard(connection: Connection) -> None:
        try:
            connection.unbind()
        except Exception:  # noqa: BLE001 - closing a broken socket may fail in any way
            pass

    def close(self) -> None:
        if self._connection is not None:
            self._discard(self._connection)
            self._connection = None

    def _call(self, what: str, method: str, *args, **kwargs):
        """Run one connection method; ldap3 errors become DirectoryError / DirectoryUnavailable."""
        connection = self.connection
        try:
            getattr(connection, method)(*args, **kwargs)
        except (ldap_exceptions.LDAPBusyResult, ldap_exceptions.LDAPUnavailableResult) as exc:
            self.close()
            raise DirectoryUnavailable(f"{self.config.uri}: {what}: {_result_text(exc)}") from None
        except ldap_exceptions.LDAPOperationResult:
            raise
        except (ldap_exceptions.LDAPException, OSError) as exc:
            # The connection broke (server stopped, timeout): drop it; the next call reconnects.
            self.close()
            raise DirectoryUnavailable(f"{self.config.uri}: {what}: {_oneline(exc)}") from None
        return connection

    # --- entries -------------------------------------------------------------------------

    def find_entry(self, locator: EntryLocator, *, attributes: list[str]) -> DirectoryEntry:
        config = self.config
        try:
            if locator.dn:
                where = locator.dn
                connection = self._call(
                    f"reading {locator.dn}", "search", locator.dn, "(objectClass=*)", search_scope=BASE,
                    attributes=attributes,
                )
            else:
                search_filter = config.mail_filter % {
                    "mail": escape_filter_chars(locator.mail),
                    "user": escape_filter_chars(locator.user),
                }
                where = f"{search_filter} under {config.user_base_dn}"
                connection = self._call(
                    f"searching {where}", "search", config.user_base_dn, search_filter, search_scope=SUBTREE,
                    attributes=attributes, size_limit=2,
                )
        except ldap_exceptions.LDAPSizeLimitExceededResult:
            raise DirectoryError(f"More than one directory entry matches {where}; store the DN on the employee.") from None
        except ldap_exceptions.LDAPNoSuchObjectResult:
            raise EntryNotFound(f"No directory entry {where}.") from None
        except ldap_exceptions.LDAPOperationResult as exc:
            raise DirectoryError(f"Searching {where} failed: {_result_text(exc)}") from None
        entries = [item for item in connection.response or [] if item.get("type") == "searchResEntry"]
        if not entries:
            raise EntryNotFound(f"No directory entry matches {where}.")
        if len(entries) > 1:
            raise DirectoryError(f"More than one directory entry matches {where}; store the DN on the employee.")
        raw = entries[0].get("raw_attributes") or {}
        return DirectoryEntry(dn=entries[0]["dn"], values={name: list(values) for name, values in raw.items()})

    def find_entries_by_mail(self, mails: Sequence[str], *, attributes: list[str]) -> dict[str, list[DirectoryEntry]] | None:
        """The entries carrying each mailbox (lowercased key), found with one search for all of them.

        None when that cannot be done exactly (the mail filter is more than one equality, or the
        directory refused the search, e.g. its size limit): the caller then uses find_entry one
        by one, which also words the errors. Raises DirectoryUnavailable like every call.
        """
        match = _EQUALITY_MAIL_FILTER.match(self.config.mail_filter)
        found: dict[str, list[DirectoryEntry]] = {mail.lower(): [] for mail in mails}
        if match is None or not found:
            return None if match is None else found
        mail_attribute = match.group(1)
        search_filter = "(|" + "".join(f"({mail_attribute}={escape_filter_chars(mail)})" for mail in found) + ")"
        base = self.config.user_base_dn
        try:
            connection = self._call(
                f"searching {len(found)} mailboxes under {base}", "search", base, search_filter,
                search_scope=SUBTREE, attributes=[*attributes, mail_attribute],
            )  # fmt: skip
        except ldap_exceptions.LDAPOperationResult:
            return None
        for item in connection.response or []:
            if item.get("type") != "searchResEntry":
                continue
            raw = item.get("raw_attributes") or {}
            entry = DirectoryEntry(dn=item["dn"], values={name: list(values) for name, values in raw.items()})
            for value in entry.get(mail_attribute):
                entries = found.get(value.decode("utf-8", "replace").lower())
                if entries is not None and entry not in entries:
                    entries.append(entry)
        return found

    def modify_values(
        self,
        dn: str,
        *,
        add: dict[str, list[bytes]] | None = None,
        delete: dict[str, list[bytes]] | None = None,
        replace: dict[str, list[bytes]] | None = None,
    ) -> None:
        """One modify request: exact-value deletes, then adds; the server applies it atomically.

        Deleting or adding exact values leaves every other value of the attribute alone;
        `replace` rewrites an attribute whole (for attributes without an equality rule).
        """
        changes: dict[str, list[tuple]] = {}
        for attribute, values in (delete or {}).items():
            if values:
                changes.setdefault(attribute, []).append((MODIFY_DELETE, list(values)))
        for attribute, values in (add or {}).items():
            if values:
                changes.setdefault(attribute, []).append((MODIFY_ADD, list(values)))
        for attribute, values in (replace or {}).items():
            changes.setdefault(attribute, []).append((MODIFY_REPLACE, list(values)))
        if not changes:
            return
        try:
            self._call(f"modifying {dn}", "modify", dn, changes)
        except (ldap_exceptions.LDAPAttributeOrValueExistsResult, ldap_exceptions.LDAPNoSuchAttributeResult):
            raise  # the entry changed under us; the caller re-reads and plans again
        except ldap_exceptions.LDAPOperationResult as exc:
            attributes = ", ".join(changes)
            raise DirectoryError(f"Modifying {attributes} of {dn} failed: {_result_text(exc)}") from None


# Raised by modify_values when the entry changed between reading and writing.
ConcurrentChange = (ldap_exceptions.LDAPAttributeOrValueExistsResult, ldap_exceptions.LDAPNoSuchAttributeResult)
