"""The members of a directory group, for bulk enrollment (`manage.py enroll --ldap-group DN`).

`directory_group_members` reads the group entry through the configured directory (the same
connection and bind as the publisher and the people search, client.py), then each member's
entry with the attributes an employee record needs (people.py: the preset's log-in name,
names, mailbox, department). Nested groups (a member that is itself a group, as AD and
groupOfNames allow) are followed, each group once. A member that cannot be enrolled (no such
entry, a disabled AD account, a computer) is returned with the reason, for the batch to report
against its DN. It never writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ldap3 import BASE
from ldap3.core import exceptions as ldap_exceptions
from ldap3.utils.dn import parse_dn

from core.exceptions import PortalError

from .client import DirectoryClient, DirectoryError, _result_text
from .config import DirectoryConfig
from .people import DirectoryNotConfigured, DirectoryPerson, _requested_attributes, person_from_entry

MEMBER_ATTRIBUTES = ("member", "uniqueMember")
GROUP_CLASSES = frozenset({"groupofnames", "groupofuniquenames", "group"})
MAX_MEMBERS = 200_000  # people; a larger "group" is a mistake (the whole directory?)
_AD_ACCOUNT_DISABLED = 0x2  # userAccountControl ACCOUNTDISABLE


class DirectoryGroupRefused(PortalError):
    """The group cannot be read: not a DN, no such entry, not a group, or too large."""

    code = "directory_group_refused"


@dataclass(frozen=True)
class GroupMember:
    dn: str
    person: DirectoryPerson | None = None
    problem: str = ""  # why the member cannot be enrolled (then person is None)


def _text(values: list) -> list[str]:
    return [value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value) for value in values]


def _values(raw: dict, name: str) -> list[str]:
    return next((_text(list(items)) for key, items in raw.items() if key.lower() == name.lower()), [])


def _read(client: DirectoryClient, dn: str, attributes: list[str]) -> dict | None:
    """The entry's raw attributes, or None when there is no such entry."""
    try:
        connection = client._call(
            f"reading {dn}", "search", dn, "(objectClass=*)", search_scope=BASE, attributes=attributes
        )
    except ldap_exceptions.LDAPNoSuchObjectResult:
        return None
    except ldap_exceptions.LDAPOperationResult as exc:
        raise DirectoryError(f"Reading {dn} failed: {_result_text(exc)}") from None
    entries = [item for item in connection.response or [] if item.get("type") == "searchResEntry"]
    return (entries[0].get("raw_attributes") or {}) if entries else None


def _dn_key(dn: str) -> str:
    return ",".join(part.strip() for part in dn.split(",")).lower()


def _member_problem(config: DirectoryConfig, classes: set[str], raw: dict) -> str:
    if "computer" in classes:
        return "is a computer account, not a person."
    if config.preset == "activedirectory":
        control = next(iter(_values(raw, "userAccountControl")), "0")
        if control.isdigit() and int(control) & _AD_ACCOUNT_DISABLED:
            return "is a disabled account."
    return ""


def directory_group_members(
    *, group_dn: str, config: DirectoryConfig | None = None, client: DirectoryClient | None = None
) -> list[GroupMember]:
    """The people in the group `group_dn` (and its nested groups), in the order the directory lists them.

    Raises DirectoryGroupRefused for a DN that is malformed, names no entry or no group;
    DirectoryNotConfigured without a directory; DirectoryError / DirectoryUnavailable when the
    directory cannot answer (messages an administrator can act on, no credentials).
    """
    group_dn = (group_dn or "").strip()
    example = "such as cn=staff,ou=groups,dc=example,dc=org"
    if not group_dn:
        raise DirectoryGroupRefused(f"Name the group by its DN ({example}).")
    try:
        parse_dn(group_dn)
    except Exception:  # noqa: BLE001 - ldap3 raises several types for a malformed DN
        raise DirectoryGroupRefused(f"{group_dn!r} is not a distinguished name ({example}).") from None
    if config is None:
        config = DirectoryConfig.from_settings()
    if config is None:
        raise DirectoryNotConfigured("No directory is configured (PORTAL_LDAP_URI is empty): enroll from a CSV file.")
    attributes = list(dict.fromkeys([*_requested_attributes(config), "objectClass", *MEMBER_ATTRIBUTES]))
    if config.preset == "activedirectory":
        attributes.append("userAccountControl")
    own_client = client is None
    client = client or DirectoryClient(config)
    try:
        group = _read(client, group_dn, ["objectClass", *MEMBER_ATTRIBUTES])
        if group is None:
            raise DirectoryGroupRefused(f"There is no directory entry {group_dn}.")
        if not {name.lower() for name in _values(group, "objectClass")} & GROUP_CLASSES:
            raise DirectoryGroupRefused(f"{group_dn} is not a group (groupOfNames, groupOfUniqueNames or group).")
        members: list[GroupMember] = []
        seen = {_dn_key(group_dn)}
        pending = [dn for name in MEMBER_ATTRIBUTES for dn in _values(group, name)]
        while pending:
            dn = pending.pop(0)
            if _dn_key(dn) in seen:
                continue
            seen.add(_dn_key(dn))
            raw = _read(client, dn, attributes)
            if raw is None:
                members.append(GroupMember(dn=dn, problem="There is no such directory entry."))
                continue
            classes = {name.lower() for name in _values(raw, "objectClass")}
            if classes & GROUP_CLASSES:
                pending.extend(dn for name in MEMBER_ATTRIBUTES for dn in _values(raw, name))
                continue
            if problem := _member_problem(config, classes, raw):
                members.append(GroupMember(dn=dn, problem=f"The entry {problem}"))
            else:
                members.append(GroupMember(dn=dn, person=person_from_entry(config, dn, raw)))
            if len(members) > MAX_MEMBERS:
                raise DirectoryGroupRefused(f"{group_dn} has more than {MAX_MEMBERS} members: enroll it in parts.")
        return members
    finally:
        if own_client:
            client.close()


def group_member_records(members: list[GroupMember]) -> list[tuple[str, dict[str, str], str]]:
    """The members as bulk rows' records (enrollment.bulk_file.bulk_rows_from_records): DN, values, problem."""
    records = []
    for member in members:
        person = member.person
        values = {"directory_dn": member.dn}
        if person is not None:
            values.update(
                username=person.login_name,
                mail=person.mail,
                given_name=person.given_name,
                surname=person.surname,
                department=person.department,
            )
        records.append((member.dn, values, member.problem))
    return records
