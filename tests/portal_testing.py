"""Helpers shared by the tests (a module of its own: `conftest` names several files)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

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


def require_redis(url: str) -> None:
    """Redis answers PING at `url`; in CI its absence fails the test instead of skipping."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 6379), timeout=2) as connection:
            connection.sendall(b"PING\r\n")
            if connection.recv(16).startswith(b"+PONG"):
                return
    except OSError:
        pass
    message = f"Redis is not reachable at {url}; start redis-server (the task queue tests need it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def audit_tamper(change):
    """Change audit rows behind the portal's back: on PostgreSQL, past the append-only triggers."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return change()
    with connection.cursor() as cursor:
        # ALTER TABLE needs no pending (deferred foreign key) trigger events.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE escrow_auditevent DISABLE TRIGGER USER")
        try:
            return change()
        finally:
            cursor.execute("ALTER TABLE escrow_auditevent ENABLE TRIGGER USER")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def race(*calls, timeout: float = 60) -> list[tuple[str, object]]:
    """Run the calls in threads released together; each gives ("ok", result) or ("error", exception)."""
    import threading

    from django.db import connection, connections

    barrier = threading.Barrier(len(calls), timeout=timeout)
    outcomes: list[tuple[str, object] | None] = [None] * len(calls)

    def run(index, call):
        try:
            connection.ensure_connection()  # connect before the barrier: released means racing
            barrier.wait()
            outcomes[index] = ("ok", call())
        except Exception as exc:  # noqa: BLE001 - the outcome is what is judged
            outcomes[index] = ("error", exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a racing thread hangs"
    return outcomes
