"""Settings read from the environment the way operators write it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _engine_with(tmp_path, database_url: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "PORTAL_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "portal.settings"}
    script = "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_an_empty_database_url_means_the_embedded_sqlite(tmp_path):
    assert _engine_with(tmp_path, "") == "django.db.backends.sqlite3"
    assert _engine_with(tmp_path, "  ") == "django.db.backends.sqlite3"
    assert _engine_with(tmp_path, "postgres://u@127.0.0.1:5432/x") == "django.db.backends.postgresql"
