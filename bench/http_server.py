"""The HTTP side of the benchmarks (bench/cases_http.py): gunicorn as its systemd unit starts it, and clients.

`Server` runs gunicorn on the benchmark's database and data directory with production settings
and *_FILE secrets, on a port in PORTAL_BENCH_HTTP_PORTS; `run_clients` drives it from one
asyncio loop of keep-alive connections, so that the clients take little of the CPU they measure.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .harness import ROOT

PORTS = os.environ.get("PORTAL_BENCH_HTTP_PORTS", "18100-18199")
UNIT = ROOT / "deploy" / "systemd" / "portal-web.service"
CLIENTS = 20
PASSPHRASE = "bench download passphrase"
_SECRETS = {"SECRET_KEY": "PORTAL_SECRET_KEY", **{name: name for name in (
    "PORTAL_CA_PASSPHRASE", "PORTAL_PICKUP_KEK", "PORTAL_AUDIT_CHAIN_KEY", "PORTAL_AUDIT_ANCHOR_KEY")}}  # fmt: skip

# --- The server -----------------------------------------------------------------------------------


def _database_url() -> str:
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{database['NAME']}"  # the benchmark's file (NAME is the test database's)
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    host = f"{database.get('HOST') or '127.0.0.1'}:{database.get('PORT') or 5432}"
    return f"postgres://{database.get('USER') or 'postgres'}{password}@{host}/{database['NAME']}"


def _free_port() -> int:
    first, last = (int(part) for part in PORTS.split("-"))
    size = last - first + 1
    for offset in range(size):
        port = first + (os.getpid() + offset) % size  # parallel runs start apart
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {PORTS}")


@dataclass
class Server:
    """gunicorn as the systemd unit starts it, on the benchmark's database and data directory."""

    workdir: Path
    workers: int = 2
    threads: int | None = None  # None: portal/gunicorn_conf.py's default (4)
    profile_dir: Path | None = None  # a cProfile of each worker, written as it exits (use threads=1)
    port: int = 0
    process: subprocess.Popen | None = None
    log: Path = field(init=False)

    def environment(self) -> dict[str, str]:
        from django.conf import settings

        secrets = self.workdir / "secrets"
        secrets.mkdir(mode=0o700, exist_ok=True)
        skip = ("PORTAL_", "DJANGO_", "DATABASE_URL", "GUNICORN_")
        environment = {key: value for key, value in os.environ.items() if not key.startswith(skip)}
        for setting, name in _SECRETS.items():
            path = secrets / name.lower()
            path.write_text(getattr(settings, setting) + "\n")
            path.chmod(0o600)
            environment[f"{name}_FILE"] = str(path)
        environment.update(
            DATABASE_URL=_database_url(),
            PORTAL_ENVIRONMENT="production",
            PORTAL_DATA_DIR=str(settings.DATA_DIR),
            PORTAL_CA_KEY_DIR=str(settings.PORTAL_CA_KEY_DIR),
            PORTAL_ALLOWED_HOSTS="127.0.0.1",
            PORTAL_TRUSTED_PROXIES="127.0.0.1",
            # Production refuses the demo's names (portal.E102, E103); the certificates keep the CA row's URLs.
            PORTAL_BASE_URL="http://pki.northwind-traders.com",
            PORTAL_ORGANIZATION_NAME="Northwind Traders",
            PORTAL_ORGANIZATION_IDENTIFIER="NTRUS+CA-7654321",
            PORTAL_DB_CONN_MAX_AGE="60",  # as deploy/portal.env.example
            PORTAL_LOG_LEVEL="WARNING",
            PORTAL_WEB_BIND=f"127.0.0.1:{self.port}",
            PORTAL_WEB_WORKERS=str(self.workers),
            PYTHONPATH=str(ROOT),
        )
        if self.threads is not None:
            environment["PORTAL_WEB_THREADS"] = str(self.threads)
        return environment

    def command(self) -> list[str]:
        service = next(line for line in UNIT.read_text().splitlines() if line.startswith("ExecStart="))
        command = [part.replace("/opt/smime-portal", str(ROOT)) for part in shlex.split(service.split("=", 1)[1])]
        command[0] = str(Path(sys.executable).with_name("gunicorn"))  # this virtualenv's
        if self.profile_dir is not None:  # the portal's configuration, plus the profile hooks
            config = self.workdir / "gunicorn_profile_conf.py"
            config.write_text(
                f"exec(open({command[command.index('--config') + 1]!r}).read())\nimport cProfile\n"
                "def post_fork(server, worker):\n    worker.profile = cProfile.Profile()\n    worker.profile.enable()\n"
                "def worker_exit(server, worker):\n    worker.profile.disable()\n"
                f"    worker.profile.dump_stats({str(self.profile_dir)!r} + f'/worker-{{worker.pid}}.prof')\n"
            )
            command[command.index("--config") + 1] = str(config)
        return command

    def __enter__(self) -> Server:
        self.port = _free_port()
        self.log = self.workdir / f"gunicorn-{self.port}.log"
        with self.log.open("w") as output:
            self.process = subprocess.Popen(
                self.command(), cwd=ROOT, env=self.environment(), stdout=output, stderr=subprocess.STDOUT
            )
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self, timeout: float = 90.0) -> None:
        """Until the workers have booted and answer (the master listens before they have loaded Django)."""
        deadline, answered = time.monotonic() + timeout, 0
        while answered < 2 * self.workers or self.log_count("Booting worker") < self.workers:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s:\n{self.log.read_text()[-3000:]}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                connection.request("GET", "/login/", headers={"Host": "127.0.0.1"})  # a redirect to https
                connection.getresponse().read()
                connection.close()
                answered += 1
            except OSError:
                time.sleep(0.2)

    def __exit__(self, *exc_info) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # as systemd stops it: the workers finish, then exit
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_count(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text)


# --- Concurrent clients ---------------------------------------------------------------------------


@dataclass
class Load:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    reconnects: int = 0

    @property
    def errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != 200)


def http_request(path: str, body: bytes, *, content_type: str, headers: dict[str, str] | None = None) -> bytes:
    """One POST as bytes: behind the TLS proxy (X-Forwarded-Proto from 127.0.0.1), kept alive."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "X-Forwarded-Proto: https", f"Content-Type: {content_type}"]
    lines += [f"Content-Length: {len(body)}", *(f"{name}: {value}" for name, value in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _client(port: int, request: bytes, load: Load, *, deadline: float, count: int | None, check) -> None:
    reader = writer = None
    done = 0
    while done < count if count is not None else time.perf_counter() < deadline:
        if writer is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.perf_counter()
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            body = await reader.readexactly(int(length[1])) if length else await reader.read()
        except (ConnectionError, asyncio.IncompleteReadError):  # a worker restarted (max_requests): again
            writer.close()
            reader = writer = None
            load.reconnects += 1
            continue
        finished, done = time.perf_counter(), done + 1
        if count is None and finished > deadline:
            break  # in flight at the end of the window: not counted
        status = int(head[9:12])
        load.latencies.append(finished - started)
        load.statuses[status] = load.statuses.get(status, 0) + 1
        if status == 200 and check is not None and load.statuses[200] == 1:
            check(body)  # the first good answer of each load is checked for what it holds
    if writer is not None:
        writer.close()


def run_clients(port: int, requests: list[bytes], *, seconds: float = 0, count: int | None = None, check=None) -> Load:
    """One client per request, each repeating its own: for `seconds`, or `count` times each."""
    load = Load()

    async def clients() -> None:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(_client(port, r, load, deadline=deadline, count=count, check=check) for r in requests))
        load.seconds = seconds if count is None else time.perf_counter() - started

    asyncio.run(clients())
    return load


