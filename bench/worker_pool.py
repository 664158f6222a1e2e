"""Real `celery -A portal worker` processes for the benchmarks, on the benchmark's database and data directory.

The workers are started with the benchmark's environment (the scratch database's URL, the data
directory with the CA keys and the development secrets, the broker at REDIS_URL), one process
and one database connection each, and consume an idle queue of their own until told to take
another (`consume`): a batch can so be queued in full before the clock starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .harness import ROOT

REDIS_URL = os.environ.get("PORTAL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")


class WorkerPool:
    """`count` worker processes (solo pool: one process, one database connection each), started here.

    They consume only an idle queue of their own until told otherwise, so that a batch can be
    queued in full before the clock starts.
    """

    def __init__(self, *, count: int, logdir: Path, conn_max_age: int = 60):
        self.tag = f"bench-{socket.gethostname()}-{os.getpid()}"
        self.idle_queue = f"{self.tag}-idle"
        self.names = [f"w{number}-{self.tag}@{socket.gethostname()}" for number in range(count)]
        self.logdir = logdir
        self.conn_max_age = conn_max_age
        self.processes: list[subprocess.Popen] = []

    def environment(self) -> dict[str, str]:
        from django.conf import settings

        database = settings.DATABASES["default"]
        if database["ENGINE"].endswith("sqlite3"):
            raise RuntimeError("the worker benchmarks need PostgreSQL (DATABASE_URL=postgres://...)")
        user, host, port = database.get("USER") or "postgres", database.get("HOST") or "127.0.0.1", database["PORT"]
        password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
        return {
            **os.environ,
            # The benchmark's scratch database (NAME is the test database's once it exists).
            "DATABASE_URL": f"postgres://{user}{password}@{host}:{port or 5432}/{database['NAME']}",
            "PORTAL_DB_CONN_MAX_AGE": str(self.conn_max_age),  # one connection per worker, kept
            "PORTAL_BROKER_URL": REDIS_URL,
            "PORTAL_DEBUG": "false",
            "PORTAL_LOG_LEVEL": "WARNING",
            "PORTAL_EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "PYTHONPATH": str(ROOT),
        }

    def start(self) -> None:
        environment = self.environment()
        celery = str(Path(sys.executable).with_name("celery"))
        for name in self.names:
            log = open(self.logdir / f"{name.split('@')[0]}.log", "ab")  # noqa: SIM115 - closed with the process
            self.processes.append(
                subprocess.Popen(
                    [
                        celery,
                        "-A",
                        "portal",
                        "worker",
                        "--pool",
                        "solo",
                        "-n",
                        name,
                        "-Q",
                        self.idle_queue,
                        "--without-gossip",
                        "--without-mingle",
                        "--without-heartbeat",
                        "--loglevel",
                        os.environ.get("PORTAL_BENCH_WORKER_LOGLEVEL", "WARNING"),
                    ],
                    cwd=ROOT,
                    env=environment,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        from portal.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a benchmark worker exited ({process.returncode}); see {self.logdir}")
            replies = app.control.ping(destination=self.names, timeout=1.0) or []
            if len(replies) == len(self.names):
                return
        raise RuntimeError(f"the benchmark workers did not answer within {timeout:.0f} s; see {self.logdir}")

    def consume(self, queue: str, *, workers: int) -> None:
        from portal.celery import app

        app.control.add_consumer(queue, destination=self.names[:workers], reply=True, timeout=5.0)

    def pause(self, queue: str) -> None:
        from portal.celery import app

        app.control.cancel_consumer(queue, destination=self.names, reply=True, timeout=5.0)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes = []


def _forget_connections_and_routes(app) -> None:
    """The app may have built its producer pool and queues for another broker or default queue."""
    app.amqp._producer_pool = None
    app._pool = None
    app.amqp._rtable = None
    for cached in ("queues", "router"):
        app.amqp.__dict__.pop(cached, None)


@contextlib.contextmanager
def broker_on(queue: str) -> Iterator[None]:
    """In this process: approval queues the issuance task on `queue` at REDIS_URL (as with PORTAL_BROKER_URL)."""
    from django.conf import settings

    from portal.celery import app

    previous_setting = settings.CELERY_BROKER_URL
    previous = {key: app.conf[key] for key in ("broker_url", "task_always_eager", "task_default_queue")}
    settings.CELERY_BROKER_URL = REDIS_URL
    app.conf.update(broker_url=REDIS_URL, task_always_eager=False, task_default_queue=queue)
    _forget_connections_and_routes(app)
    try:
        yield
    finally:
        settings.CELERY_BROKER_URL = previous_setting
        app.conf.update(previous)
        _forget_connections_and_routes(app)  # kombu's pools stay open (and shared) until the process ends


@contextlib.contextmanager
def default_queue(queue: str) -> Iterator[None]:
    """Inside `broker_on`: tasks sent meanwhile go to `queue`."""
    from portal.celery import app

    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    _forget_connections_and_routes(app)
    try:
        yield
    finally:
        app.conf.task_default_queue = previous
        _forget_connections_and_routes(app)
