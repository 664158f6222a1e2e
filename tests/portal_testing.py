"""Helpers shared by the tests (a module of its own: `conftest` names several files)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
TEST_BASE_URL = "http://pki.example.org"
PASSWORD = "demo-password-for-tests"


def require_tool(name: str) -> str:
    """The path of an external program; in CI its absence fails the test instead of skipping."""
    path = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if path is None:
        message = f"{name} is not installed"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must install it)")
        pytest.skip(message)
    return path
