"""Files under the data directory are the portal's alone: 0600 files in 0700 directories.

The generated development secrets, CA and OCSP responder keys and the demo's PKCS#12 are
created with those modes where they are written (portal/environment.py, enrollment/pki/
backends.py, enrollment/keystore/ocsp.py, bootstrap_demo). The SQLite database, which holds
the session keys, is created by SQLite with the process umask (0644 under the usual 022):
each new connection makes it 0600 again. SQLite gives its journal and WAL files the mode
of the database file, so they follow.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from django.db.backends.signals import connection_created

PRIVATE_FILE = 0o600


def _sqlite_path(connection) -> Path | None:
    name = str(connection.settings_dict.get("NAME") or "")
    if connection.vendor != "sqlite" or not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def sqlite_file_private(sender, connection, **kwargs) -> None:
    path = _sqlite_path(connection)
    if path is None:
        return
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, PRIVATE_FILE)
    except OSError:
        return  # not ours to change (another owner), or gone: nothing this receiver can do


def connect() -> None:
    connection_created.connect(sqlite_file_private, dispatch_uid="portal.data_files.sqlite_file_private")
