"""The audit chain's keys: HMAC-SHA256 keys that never live in the database, each with an id.

- PORTAL_AUDIT_CHAIN_KEY: the current key; every new event is hashed with it.
- PORTAL_AUDIT_CHAIN_KEY_ID: its id (default "1"), stored in each event's `key_id`.
- PORTAL_AUDIT_CHAIN_RETIRED_KEYS: earlier keys as `id:key` items (separated by commas,
  spaces or new lines), kept only to verify the events they hashed.

Rotating: give the new key a new id, move the old one to the retired keys; events keep
the id they were hashed with, so the whole chain still verifies. Without a retired key the
events it hashed cannot be verified, and `verify_audit_log` says which id is missing.

The keys are read from the settings once per process (again only when a test changes
them); each is kept as a keyed HMAC state, so hashing an event costs what SHA-256 does.
No Django models here: the settings' system checks use `keyring_problems`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from functools import lru_cache

KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,16}$")
# 32 random bytes at least: 43 characters of base64url (`secrets.token_urlsafe(32)`), and not
# evidently made up (as the portal's other secrets, portal.E112).
MIN_KEY_CHARACTERS = 43
MIN_DISTINCT_CHARACTERS = 10
SETTINGS = ("PORTAL_AUDIT_CHAIN_KEY", "PORTAL_AUDIT_CHAIN_KEY_ID", "PORTAL_AUDIT_CHAIN_RETIRED_KEYS")


class ChainKeyError(ValueError):
    """The chain keys are missing or malformed, or an event names a key id that is not configured."""


@dataclass(frozen=True)
class ChainKeyring:
    current_id: str
    _states: dict[str, hmac.HMAC] = field(repr=False)  # never printed: repr shows the ids only

    @property
    def ids(self) -> list[str]:
        return sorted(self._states)

    def __contains__(self, key_id: str) -> bool:
        return key_id in self._states

    def mac(self, key_id: str, message: bytes) -> str:
        try:
            state = self._states[key_id].copy()
        except KeyError:
            raise ChainKeyError(
                f"chain key id {key_id!r} is not configured (current: {self.current_id!r}; "
                "an earlier key belongs in PORTAL_AUDIT_CHAIN_RETIRED_KEYS as id:key)"
            ) from None
        state.update(message)
        return state.hexdigest()


def _retired_items(retired: str) -> list[tuple[str, str]]:
    items = []
    for item in re.split(r"[\s,]+", retired.strip()):
        if not item:
            continue
        key_id, separator, key = item.partition(":")
        if not separator:
            raise ChainKeyError("PORTAL_AUDIT_CHAIN_RETIRED_KEYS: each item is id:key")
        items.append((key_id, key))
    return items


def _weakness(key: str) -> str:
    if len(key) < MIN_KEY_CHARACTERS:
        return f"is {len(key)} characters long, shorter than {MIN_KEY_CHARACTERS} (32 random bytes in base64url)"
    if len(set(key)) < MIN_DISTINCT_CHARACTERS:
        return f"has fewer than {MIN_DISTINCT_CHARACTERS} distinct characters: not random"
    return ""


def keyring_problems(*, current_id: str, current_key: str, retired: str = "") -> list[str]:
    """What is wrong with these settings, one readable sentence each; [] when they make a keyring."""
    problems = []
    if not KEY_ID.match(current_id or ""):
        problems.append(f"PORTAL_AUDIT_CHAIN_KEY_ID must be 1 to 16 of A-Z a-z 0-9 . _ -, not {current_id!r}")
    if not current_key:
        problems.append("PORTAL_AUDIT_CHAIN_KEY is not set")
    elif weakness := _weakness(current_key):
        problems.append(f"PORTAL_AUDIT_CHAIN_KEY {weakness}")
    try:
        items = _retired_items(retired or "")
    except ChainKeyError as exc:
        return [*problems, str(exc)]
    seen = {current_id}
    for key_id, key in items:
        if not KEY_ID.match(key_id):
            problems.append(f"PORTAL_AUDIT_CHAIN_RETIRED_KEYS: {key_id!r} is no key id (1 to 16 of A-Z a-z 0-9 . _ -)")
        elif key_id in seen:
            problems.append(f"PORTAL_AUDIT_CHAIN_RETIRED_KEYS: key id {key_id!r} is given twice or is the current id")
        elif weakness := _weakness(key):
            problems.append(f"PORTAL_AUDIT_CHAIN_RETIRED_KEYS: key {key_id!r} {weakness}")
        seen.add(key_id)
    return problems


def keyring_build(*, current_id: str, current_key: str, retired: str = "") -> ChainKeyring:
    problems = keyring_problems(current_id=current_id, current_key=current_key, retired=retired)
    if problems:
        raise ChainKeyError("; ".join(problems))
    keys = dict(_retired_items(retired or ""))
    keys[current_id] = current_key
    states = {key_id: hmac.new(key.encode(), digestmod=hashlib.sha256) for key_id, key in keys.items()}
    return ChainKeyring(current_id=current_id, _states=states)


@lru_cache(maxsize=1)
def chain_keyring() -> ChainKeyring:
    """The keyring of the settings, built once."""
    from django.conf import settings

    return keyring_build(
        current_id=getattr(settings, "PORTAL_AUDIT_CHAIN_KEY_ID", "1"),
        current_key=getattr(settings, "PORTAL_AUDIT_CHAIN_KEY", ""),
        retired=getattr(settings, "PORTAL_AUDIT_CHAIN_RETIRED_KEYS", ""),
    )


def _settings_changed(*, setting: str, **kwargs) -> None:
    if setting in SETTINGS:
        chain_keyring.cache_clear()


def _connect() -> None:
    from django.core.signals import setting_changed

    setting_changed.connect(_settings_changed, dispatch_uid="audit.keys.settings_changed")


_connect()
