"""Real `celery -A portal worker` processes for tests: on the test's PostgreSQL database, a Redis
database and a queue of the test's own, with the test's CA keys and secrets.

    with CeleryWorkers(broker_url=..., queue=..., directory=tmp_path) as workers:
        worker = workers.start("a", concurrency=2)
        ...
        worker.kill()  # SIGKILL to its whole process group: no shutdown, no acknowledgement

The test database must be committed to (transactional tests: `django_db(transaction=True)`) and
PostgreSQL (SQLite's file would do, but not its locking with outside writers). A worker gets the
settings that decide whether it can issue from this process, not from the environment alone: the
test database's name, the data and CA key directories (the `pki_material` fixture points
PORTAL_CA_KEY_DIR at a temporary directory) and the secrets (CA passphrase, pickup KEK, audit chain
key), the latter as *_FILE files readable by the owner only, as in production. Every worker started
is stopped when the block ends (a warm shutdown, killed after 15 s), and the queue's messages
(waiting or unacknowledged) are deleted.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CELERY = Path(sys.executable).with_name("celery")

# Settings (environment name = settings name, except SECRET_KEY) the worker reads from files.
SECRET_SETTINGS = {
    "PORTAL_SECRET_KEY": "SECRET_KEY",
    "PORTAL_CA_PASSPHRASE": "PORTAL_CA_PASSPHRASE",
    "PORTAL_PICKUP_KEK": "PORTAL_PICKUP_KEK",
    "PORTAL_AUDIT_CHAIN_KEY": "PORTAL_AUDIT_CHAIN_KEY",
    "PORTAL_AUDIT_CHAIN_RETIRED_KEYS": "PORTAL_AUDIT_CHAIN_RETIRED_KEYS",
    "PORTAL_AUDIT_ANCHOR_KEY": "PORTAL_AUDIT_ANCHOR_KEY",
}
# Kombu's Redis transport keeps a delivered, unacknowledged message here until it is acknowledged
# or restored to its queue (after the visibility timeout).
UNACKED_KEY = "unacked"
UNACKED_INDEX_KEY = "unacked_index"
UNACKED_MUTEX_KEY = "unacked_mutex"  # held by the worker that restores, for at most this long:
UNACKED_MUTEX_EXPIRE = 300
LOG_TAIL_CHARACTERS = 12_000


def database_url() -> str:
    """The test database (NAME is the test database's once pytest-django created it), as a URL."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError("a worker process shares the test database on PostgreSQL only")
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    host = database.get("HOST") or "127.0.0.1"
    return f"postgres://{database.get('USER') or 'postgres'}{password}@{host}:{database.get('PORT') or 5432}/{database['NAME']}"


def database_sessions(*, running: bool = False) -> int:
    """Sessions on the test database other than this process's own (the workers' connections);
    `running`: only those running a statement that is not waiting for a lock."""
    from django.db import connection

    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    if running:
        query += " AND state = 'active' AND wait_event_type IS DISTINCT FROM 'Lock'"
    with connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchone()[0]


def _private_file(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return path


class Worker:
    """One worker process (and its pool children, all in one process group)."""

    def __init__(self, *, name: str, process: subprocess.Popen, log: Path):
        self.name = name
        self.process = process
        self.log = log

    def log_text(self) -> str:
        """Everything the worker wrote (its log level is INFO: each task received and done)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self) -> str:
        text = self.log_text()
        return text if len(text) <= LOG_TAIL_CHARACTERS else "[...]\n" + text[-LOG_TAIL_CHARACTERS:]

    def alive(self) -> bool:
        return self.process.poll() is None

    def pause(self) -> None:
        """SIGSTOP to the whole group: frozen where it is, sending nothing more (SIGKILL still works)."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL to the whole group: the main process, its pool children and an embedded beat."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self) -> None:
        """Ask for a warm shutdown: SIGTERM to the main process (after SIGCONT, if it was paused)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGCONT)
                os.kill(self.process.pid, signal.SIGTERM)

    def stop(self, *, timeout: float = 15.0) -> None:
        """A warm shutdown, killed if it takes longer than `timeout`.

        A worker killed in its restore scan leaves the broker's restore lock held for
        unacked_mutex_expire (5 minutes), stalling restores of the next run on that Redis
        database: the end of a test is a warm shutdown, not a kill."""
        self.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


class CeleryWorkers:
    """Starts workers on `queue` at `broker_url`; kills them all and empties the queue on exit."""

    def __init__(self, *, broker_url: str, queue: str, directory: Path, conn_max_age: int = 60):
        self.broker_url = broker_url
        self.queue = queue
        self.directory = directory
        self.conn_max_age = conn_max_age
        self.workers: list[Worker] = []

    def __enter__(self) -> CeleryWorkers:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        from django.conf import settings

        secrets = self.directory / "secrets"
        secrets.mkdir(mode=0o700, exist_ok=True)
        environment = {key: value for key, value in os.environ.items() if key not in SECRET_SETTINGS}
        for variable, setting in SECRET_SETTINGS.items():
            value = str(getattr(settings, setting, "") or "")
            environment.pop(f"{variable}_FILE", None)
            if value:
                environment[f"{variable}_FILE"] = str(_private_file(secrets / variable.lower(), value))
        environment.update(
            {
                "DATABASE_URL": database_url(),
                # One connection per pool process, kept between tasks: at most `concurrency` each.
                "PORTAL_DB_CONN_MAX_AGE": str(self.conn_max_age),
                "PORTAL_DATA_DIR": str(settings.DATA_DIR),
                "PORTAL_CA_KEY_DIR": str(settings.PORTAL_CA_KEY_DIR),
                "PORTAL_AUDIT_CHAIN_KEY_ID": str(settings.PORTAL_AUDIT_CHAIN_KEY_ID),
                "PORTAL_BROKER_URL": self.broker_url,
                "PORTAL_TASK_QUEUE": self.queue,
                "PORTAL_EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
                "PYTHONPATH": str(ROOT),
                "PYTHONUNBUFFERED": "1",
                **(extra or {}),
            }
        )
        return environment

    def start(
        self,
        label: str,
        *,
        concurrency: int = 2,
        pool: str = "prefork",
        beat: bool = False,
        environment: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> Worker:
        """A worker consuming the queue (PORTAL_TASK_QUEUE), returned once it answers a ping."""
        name = f"{label}-{os.getpid()}@{socket.gethostname()}"
        log = self.directory / f"worker-{label}.log"
        command = [
            str(CELERY),
            "-A",
            "portal",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "-n",
            name,
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        if beat:
            command += ["--beat", "--schedule", str(self.directory / f"beat-{label}.db")]
        with log.open("ab") as output:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.environment(environment),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so that killpg reaches the pool children
            )
        worker = Worker(name=name, process=process, log=log)
        self.workers.append(worker)
        self._wait_ready(worker, timeout=timeout)
        return worker

    @contextlib.contextmanager
    def _control(self):
        from celery import Celery

        control = Celery("worker-testing", broker=self.broker_url, set_as_current=False)
        try:
            yield control.control
        finally:
            control.close()

    def active(self, worker: Worker) -> list[dict]:
        """The tasks `worker` is running: each with its `id` and the pool process's `worker_pid`."""
        with self._control() as control:
            replies = control.inspect(destination=[worker.name], timeout=2.0, limit=1).active() or {}
        return replies.get(worker.name, [])

    def _wait_ready(self, worker: Worker, *, timeout: float) -> None:
        with self._control() as control:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not worker.alive():
                    raise AssertionError(
                        f"worker {worker.name} exited with {worker.process.returncode}:\n{worker.log_tail()}"
                    )
                if control.ping(destination=[worker.name], timeout=0.5):
                    return
            raise AssertionError(
                f"worker {worker.name} did not answer a ping within {timeout:.0f} s:\n{worker.log_tail()}"
            )

    def logs(self) -> str:
        return "\n".join(
            f"--- {worker.name} (exit {worker.process.poll()}) ---\n{worker.log_tail()}" for worker in self.workers
        )

    def close(self) -> None:
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            worker.stop()
        self.queue_purge()

    def restore_lock_clear_stale(self, *, older_than: float = 10.0) -> None:
        """Delete kombu's restore lock if it has been held for `older_than` seconds: a scan holds it
        for milliseconds, so its holder was killed (an earlier run), and restores would stall."""
        with self._redis() as client:
            ttl = client.ttl(UNACKED_MUTEX_KEY)
            if ttl > 0 and ttl < UNACKED_MUTEX_EXPIRE - older_than:
                client.delete(UNACKED_MUTEX_KEY)

    # --- What the broker holds for the queue -----------------------------------------------------

    def _redis(self):
        import redis

        return redis.Redis.from_url(self.broker_url)

    def queue_length(self) -> int:
        with self._redis() as client:
            return int(client.llen(self.queue))

    def unacknowledged(self) -> dict[str, dict]:
        """Messages of the queue delivered and not acknowledged: delivery tag -> task name, id and kwargs."""
        found = {}
        with self._redis() as client:
            for tag, raw in client.hgetall(UNACKED_KEY).items():
                message, _exchange, routing_key = json.loads(raw)
                if routing_key != self.queue:
                    continue
                _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
                headers = message["headers"]
                found[tag.decode()] = {"task": headers.get("task"), "id": headers.get("id"), **kwargs}
        return found

    def queue_purge(self) -> None:
        with self._redis() as client:
            tags = list(self.unacknowledged())
            if tags:
                client.hdel(UNACKED_KEY, *tags)
                client.zrem(UNACKED_INDEX_KEY, *tags)
            # The queue, and the exchange binding kombu keeps for it (named after the queue).
            client.delete(self.queue, f"_kombu.binding.{self.queue}", f"_kombu.binding_permanent.{self.queue}")


@contextlib.contextmanager
def broker_on(*, broker_url: str, queue: str) -> Iterator[None]:
    """In this process: tasks go to `queue` at `broker_url` (approval with CELERY_BROKER_URL set
    queues the issuance; set that setting too, e.g. with pytest-django's `settings`)."""
    from portal.celery import app

    previous = {key: app.conf[key] for key in ("broker_url", "task_always_eager", "task_default_queue")}
    app.conf.update(broker_url=broker_url, task_always_eager=False, task_default_queue=queue)
    _forget_connections_and_routes(app)
    try:
        yield
    finally:
        app.conf.update(previous)
        # Not app.pool.force_close_all(): kombu's producer pools are shared by the process, keyed
        # by broker; closed, the next block's sends would fail ("Acquire on closed pool").
        _forget_connections_and_routes(app)


@contextlib.contextmanager
def in_process_worker(*, broker_url: str, name: str) -> Iterator[object]:
    """A Celery worker in this process (celery.contrib.testing, solo pool: it shares the test
    database) on a queue of this process's own at `broker_url`: another run at the same time
    (another checkout, another xdist worker) neither takes these tasks nor loses its own to it.
    Yields the app; the queue is deleted afterwards."""
    import redis
    from celery.contrib.testing.worker import start_worker

    from portal.celery import app

    queue = f"{name}-{socket.gethostname()}-{os.getpid()}"
    try:
        with broker_on(broker_url=broker_url, queue=queue):
            with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
                yield app
    finally:
        redis.Redis.from_url(broker_url).delete(queue)


def _forget_connections_and_routes(app) -> None:
    """The producer pool and queues may have been built for another broker or default queue."""
    app.amqp._producer_pool = None
    app._pool = None
    app.amqp._rtable = None
    for cached in ("queues", "router", "default_queue", "default_exchange"):
        app.amqp.__dict__.pop(cached, None)


def wait_until(
    predicate: Callable[[], object], *, timeout: float, interval: float = 0.1, message: Callable[[], str] | str = ""
) -> object:
    """The predicate's first true value; AssertionError with `message` (or its result) after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(message() if callable(message) else message or f"timed out after {timeout} s")
        time.sleep(interval)
