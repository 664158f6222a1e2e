"""What the portal writes under its data directory is readable by the portal alone (0600 / 0700)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from django.db import connection
from python_forkserver import run_python

from portal.data_files import sqlite_file_private
from portal.environment import private_directory

ROOT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _manage(data_dir: Path, *arguments: str) -> subprocess.CompletedProcess:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_") and k != "DATABASE_URL"}
    env = {**inherited, "DJANGO_SETTINGS_MODULE": "portal.settings", "PORTAL_DATA_DIR": str(data_dir)}
    return run_python(
        ["manage.py", *arguments], cwd=ROOT, env=env, check=True, umask=0o022
    )  # the usual umask, which alone would give 0644 / 0755


def test_a_fresh_migrate_leaves_the_database_and_the_data_directory_private(tmp_path):
    data_dir = tmp_path / "fresh" / "data"
    _manage(data_dir, "migrate", "--noinput")
    database = data_dir / "portal.sqlite3"
    assert _mode(database) == 0o600
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "dev-secrets") == 0o700
    for secret in (data_dir / "dev-secrets").iterdir():
        assert _mode(secret) == 0o600, secret
    for sidecar in data_dir.glob("portal.sqlite3-*"):  # journal / WAL, if left: the database's mode
        assert _mode(sidecar) & 0o077 == 0, sidecar


def test_an_existing_world_readable_database_is_made_private_on_connection(tmp_path):
    class SqliteConnection:
        vendor = "sqlite"
        settings_dict = {"NAME": str(tmp_path / "old.sqlite3")}

    database = tmp_path / "old.sqlite3"
    database.write_bytes(b"")
    database.chmod(0o644)
    sqlite_file_private(sender=None, connection=SqliteConnection())
    assert _mode(database) == 0o600
    SqliteConnection.settings_dict = {"NAME": "file:memorydb_default?mode=memory&cache=shared"}
    sqlite_file_private(sender=None, connection=SqliteConnection())  # in memory: nothing to do


def test_the_receiver_is_connected():
    from django.db.backends.signals import connection_created

    assert any("sqlite_file_private" in str(receiver) for receiver in connection_created.receivers)
    assert connection.vendor in {"sqlite", "postgresql"}


def test_private_directory_creates_every_missing_level_0700(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    private_directory(target)
    for level in (tmp_path / "a", tmp_path / "a" / "b", target):
        assert _mode(level) == 0o700, level
    tmp_path.chmod(0o755)
    private_directory(target)
    assert _mode(tmp_path) == 0o755  # an existing directory keeps the mode its owner chose


def test_ca_keys_and_their_directory_are_private(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ec

    from enrollment.pki.backends import EncryptedFileKeyBackend

    path = tmp_path / "ca" / "demo.key.pem"
    EncryptedFileKeyBackend.store(path=path, key=ec.generate_private_key(ec.SECP256R1()), passphrase=b"p" * 48)
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
