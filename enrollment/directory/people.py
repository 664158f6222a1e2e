"""Finding people in the corporate directory, for the admin's "Add employee" page.

`directory_people_search` reads the configured directory (OpenLDAP or Active Directory) with
the same connection and bind as the publisher (client.py): a filter built from escaped words
only, a bounded size limit, and the attributes an employee record needs. It never writes.
`directory_people_in_portal` says which of the people found are employees (or have an account) already.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Q, Value
from django.db.models.functions import Lower, Replace
from ldap3 import SUBTREE
from ldap3.core import exceptions as ldap_exceptions
from ldap3.utils.conv import escape_filter_chars

from core.exceptions import ConfigurationError, PortalError

from ..models import Employee
from ..services.employees import normalized_values
from .client import DirectoryClient, DirectoryError, _result_text
from .config import DirectoryConfig

# A search is a few words someone types; longer text is a mistake or an attack.
MAX_TEXT_LENGTH = 100
MAX_WORDS = 5
MIN_TEXT_LENGTH = 2
MAX_LIMIT = 50


@dataclass(frozen=True)
class PeopleSchema:
    """Where a preset keeps what an employee record needs (both presets name mail, givenName and sn alike)."""

    login_attribute: str
    department_attributes: tuple[str, ...]
    display_attribute: str
    # Only people: AD keeps computer accounts (which have a sAMAccountName too) and disabled accounts.
    person_filter: str = ""


PEOPLE_SCHEMAS = {
    # inetOrgPerson (RFC 2798): the organizational unit, else departmentNumber.
    "openldap": PeopleSchema(
        login_attribute="uid", department_attributes=("ou", "departmentNumber"), display_attribute="cn"
    ),
    "activedirectory": PeopleSchema(
        login_attribute="sAMAccountName",
        department_attributes=("department",),
        display_attribute="displayName",
        person_filter="(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2))",
    ),
}
SEARCHED_ATTRIBUTES = ("cn", "displayName", "givenName", "sn", "mail")


class DirectoryNotConfigured(PortalError):
    """No directory to search (PORTAL_LDAP_URI is empty)."""

    code = "directory_not_configured"
    http_status = 409


class DirectorySearchRefused(PortalError):
    """The search text cannot be searched for (empty, too long, a control character)."""

    code = "directory_search_refused"


@dataclass(frozen=True)
class DirectoryPerson:
    dn: str
    login_name: str = ""
    given_name: str = ""
    surname: str = ""
    mail: str = ""
    department: str = ""
    display_name: str = ""

    @property
    def name(self) -> str:
        return self.display_name or " ".join(part for part in (self.given_name, self.surname) if part) or self.dn


@dataclass(frozen=True)
class DirectoryPeople:
    people: list[DirectoryPerson]
    # More entries matched than `limit`: the person should type more of the name.
    truncated: bool = False


def login_attribute(config: DirectoryConfig) -> str:
    """The attribute log-ins search by (as portal/ldap_auth.py reads PORTAL_LDAP_USER_FILTER), else the preset's."""
    found = re.search(r"\(([\w;-]+)=%\(user\)s\)", config.user_filter)
    return found.group(1) if found else PEOPLE_SCHEMAS.get(config.preset, PEOPLE_SCHEMAS["openldap"]).login_attribute


def search_words(text: str) -> list[str]:
    """The words of `text` to search for, or DirectorySearchRefused saying why there are none."""
    text = unicodedata.normalize("NFC", text or "").strip()
    if len(text) > MAX_TEXT_LENGTH:
        raise DirectorySearchRefused(f"Type at most {MAX_TEXT_LENGTH} characters to search the directory.")
    if any(unicodedata.category(char) in {"Cc", "Cf", "Cs", "Co", "Cn"} and not char.isspace() for char in text):
        raise DirectorySearchRefused("The search text contains a control or invisible character.")
    words = text.split()
    if len("".join(words)) < MIN_TEXT_LENGTH:
        raise DirectorySearchRefused(f"Type at least {MIN_TEXT_LENGTH} characters of a name, mailbox or log-in name.")
    if len(words) > MAX_WORDS:
        raise DirectorySearchRefused(f"Type at most {MAX_WORDS} words to search the directory.")
    return words


def people_filter(config: DirectoryConfig, words: list[str]) -> str:
    """Entries with a log-in name (the log-in filter with any value), each word in a name, mailbox or log-in name.

    Every word is escaped (RFC 4515: `*`, `(`, `)`, `\\`, NUL), so it only ever matches as text.
    """
    schema = PEOPLE_SCHEMAS.get(config.preset, PEOPLE_SCHEMAS["openldap"])
    # "(uid=%(user)s)" -> "(uid=*)": a presence test, so a custom log-in filter's other clauses still apply.
    login_filter = config.user_filter.replace("%(user)s", "*")
    attributes = [*SEARCHED_ATTRIBUTES, login_attribute(config)]
    clauses = []
    for word in words:
        escaped = escape_filter_chars(word)
        clauses.append("(|" + "".join(f"({attribute}=*{escaped}*)" for attribute in attributes) + ")")
    return f"(&{login_filter}{schema.person_filter}{''.join(clauses)})"


def _first(values: dict[str, list[bytes]], *names: str) -> str:
    lowered = {name.lower(): items for name, items in values.items()}
    for name in names:
        for value in lowered.get(name.lower()) or []:
            text = value.decode("utf-8", errors="replace").strip() if isinstance(value, bytes) else str(value).strip()
            if text:
                return text
    return ""


def person_from_entry(config: DirectoryConfig, dn: str, values: dict[str, list[bytes]]) -> DirectoryPerson:
    """One search result as the fields of an employee record (the first value of each attribute)."""
    schema = PEOPLE_SCHEMAS.get(config.preset, PEOPLE_SCHEMAS["openldap"])
    return DirectoryPerson(
        dn=dn,
        login_name=_first(values, login_attribute(config)),
        given_name=_first(values, "givenName"),
        surname=_first(values, "sn"),
        mail=_first(values, "mail"),
        department=_first(values, *schema.department_attributes),
        display_name=_first(values, schema.display_attribute, "cn"),
    )


def _requested_attributes(config: DirectoryConfig) -> list[str]:
    schema = PEOPLE_SCHEMAS.get(config.preset, PEOPLE_SCHEMAS["openldap"])
    names = [
        login_attribute(config),
        "givenName",
        "sn",
        "mail",
        *schema.department_attributes,
        schema.display_attribute,
        "cn",
    ]
    return list(dict.fromkeys(names))


def directory_people_search(
    *, text: str, limit: int = 20, config: DirectoryConfig | None = None, client: DirectoryClient | None = None
) -> DirectoryPeople:
    """People under PORTAL_LDAP_USER_BASE_DN whose names, mailbox or log-in name contain every word of `text`.

    At most `limit` (≤ 50) people, sorted by name; `truncated` when more matched. Raises
    DirectorySearchRefused for text that cannot be searched, DirectoryNotConfigured without a
    directory, ConfigurationError for broken PORTAL_LDAP_* settings and DirectoryError /
    DirectoryUnavailable (messages an administrator can act on, no credentials) when the
    directory cannot answer.
    """
    words = search_words(text)
    if config is None:
        config = DirectoryConfig.from_settings()
    if config is None:
        raise DirectoryNotConfigured(
            "No directory is configured (PORTAL_LDAP_URI is empty): type the person's details."
        )
    limit = max(1, min(int(limit), MAX_LIMIT))
    search_filter = people_filter(config, words)
    where = f"under {config.user_base_dn}"
    own_client = client is None
    client = client or DirectoryClient(config)
    try:
        connection = client._call(
            f"searching people {where}",
            "search",
            config.user_base_dn,
            search_filter,
            search_scope=SUBTREE,
            attributes=_requested_attributes(config),
            size_limit=limit + 1,
            time_limit=config.receive_timeout,
        )
        response, result = list(connection.response or []), connection.result or {}
    except ldap_exceptions.LDAPNoSuchObjectResult:
        raise ConfigurationError(
            f"PORTAL_LDAP_USER_BASE_DN {config.user_base_dn} does not exist in the directory."
        ) from None
    except ldap_exceptions.LDAPOperationResult as exc:
        raise DirectoryError(f"Searching people {where} failed: {_result_text(exc)}") from None
    finally:
        if own_client:
            client.close()
    entries = [item for item in response if item.get("type") == "searchResEntry"]
    people = [person_from_entry(config, item["dn"], item.get("raw_attributes") or {}) for item in entries]
    # Size and time limits are no exceptions in ldap3: the server stopped at its (or our) limit.
    truncated = len(people) > limit or result.get("description") in {"sizeLimitExceeded", "timeLimitExceeded"}
    people = sorted(people[:limit], key=lambda person: (person.name.casefold(), person.dn))
    return DirectoryPeople(people=people, truncated=truncated)


def _dn_key(dn: str) -> str:
    """One spelling per DN for comparing (no blanks around the commas, lower case)."""
    return ",".join(part.strip() for part in (dn or "").split(",")).lower()


@dataclass(frozen=True)
class PersonInPortal:
    """What the portal has of a person found in the directory."""

    # Their employee record (same mailbox, directory DN or account): not to be added again.
    employee: Employee | None = None
    # An account with their log-in name but no employee record (a local one, say): the log-in
    # name is not filled in for them, so that nobody links it by picking someone.
    existing_account: str = ""


def directory_people_in_portal(people: list[DirectoryPerson]) -> dict[str, PersonInPortal]:
    """Person DN -> what the portal has of them; people it has nothing of are left out."""
    if not people:
        return {}
    mails = {person.dn: normalized_values({"mail": person.mail})["mail"] for person in people if person.mail}
    logins = {person.dn: person.login_name.lower() for person in people if person.login_name}
    dns = {person.dn: _dn_key(person.dn) for person in people}
    employees = (
        Employee.objects.select_related("user")
        .annotate(
            # The usual other spelling of a DN, a blank after each comma, compared as _dn_key spells it.
            dn_key=Replace(Lower("directory_dn"), Value(", "), Value(",")),
            mail_lower=Lower("mail"),
            username_lower=Lower("user__username"),
        )
        .filter(
            Q(mail_lower__in=set(mails.values()))
            | Q(username_lower__in=set(logins.values()))
            | Q(dn_key__in=set(dns.values()))
        )
    )
    by_mail, by_login, by_dn = {}, {}, {}
    for employee in employees:
        by_mail[employee.mail.lower()] = employee
        by_login[employee.user.get_username().lower()] = employee
        if employee.directory_dn:
            by_dn[_dn_key(employee.directory_dn)] = employee
    user_model = get_user_model()
    accounts = {
        name.lower(): name
        for name in user_model.objects.annotate(username_lower=Lower(user_model.USERNAME_FIELD))
        .filter(username_lower__in=set(logins.values()))
        .values_list(user_model.USERNAME_FIELD, flat=True)
    }
    found = {}
    for person in people:
        login = logins.get(person.dn, "")
        employee = by_dn.get(dns[person.dn]) or by_mail.get(mails.get(person.dn, "")) or by_login.get(login)
        if employee is not None:
            found[person.dn] = PersonInPortal(employee=employee)
        elif login in accounts:
            found[person.dn] = PersonInPortal(existing_account=accounts[login])
    return found
