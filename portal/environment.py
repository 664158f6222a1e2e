"""How the settings read the environment: django-environ pinned to this portal's rules, and secrets.

portal/settings/ uses these; they are here so that the settings modules hold only settings.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured


def _expected_form(cast: Any) -> str:
    """What a value that `cast` could not parse should have looked like, for the error."""
    if isinstance(cast, list):
        return f"comma-separated {_expected_form(cast[0]).removeprefix('a ')}s"
    return {int: "a whole number", float: "a number"}.get(cast, "valid")


class PortalEnv(environ.Env):
    """django-environ, pinned to how operators write this portal's environment (README).

    Unlike the library's defaults: an empty value means unset (env files write `VAR=` for
    that); a value starting with "$" is taken as it is, not as a reference to another
    variable (a secret may start with "$"); list items are trimmed and blank ones dropped;
    only 1, true, yes and on are true; a value that does not parse names its variable.
    """

    BOOLEAN_TRUE_STRINGS = ("1", "true", "yes", "on")

    def get_value(
        self, var: str, cast: Any = None, default: Any = environ.Env.NOTSET, parse_default: bool = False
    ) -> Any:
        value = self.ENVIRON.get(var, "")
        if value == "":
            if default is self.NOTSET:
                raise ImproperlyConfigured(f"{var} must be set")
            return default
        try:
            return self.parse_value(value, cast)
        except ValueError:
            raise ImproperlyConfigured(f"{var} must be {_expected_form(cast)}, not {value!r}") from None

    @classmethod
    def parse_value(cls, value: str, cast: Any) -> Any:
        if cast is bool:
            return value.strip().lower() in cls.BOOLEAN_TRUE_STRINGS
        if cast is list or isinstance(cast, list):
            item_cast = cast[0] if isinstance(cast, list) else str
            return [item_cast(item.strip()) for item in value.split(",") if item.strip()]
        return super().parse_value(value, cast)


def private_directory(path: Path) -> Path:
    """`path` and the parents it needs, each created 0700 (mkdir's `mode` covers only the last one).

    Directories that exist already keep their mode: the operator chose it.
    """
    missing, parent = [], path
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)  # the umask may have removed bits but never adds; be explicit
    return path


def secret_reader(env: PortalEnv, *, development: bool, data_dir: Path) -> Callable[..., str]:
    """The settings' `secret(name, generated=True)`, bound to the environment it runs in."""

    def secret(name: str, *, generated: bool = True) -> str:
        """A secret from NAME or from the file named by NAME_FILE (NAME wins when both are set).

        Unset, a `generated` secret is made up in development (and required in production);
        any other is empty. Not environ.FileAwareEnv: that one prefers the file, keeps the
        file's trailing newline and fails with a bare OSError.
        """
        value = env.str(name, default="")
        secret_file = env.str(f"{name}_FILE", default="")
        if not value and secret_file:
            path = Path(secret_file)
            try:
                value = path.read_text().strip()
            except OSError as exc:
                raise ImproperlyConfigured(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
        if value or not generated:
            return value
        if not development:
            raise ImproperlyConfigured(f"{name} (or {name}_FILE) must be set in production")
        # Development only: a generated secret kept beside the data, readable by us alone.
        path = data_dir / "dev-secrets" / name.lower()
        if not path.exists():
            private_directory(path.parent)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    return secret
