"""A real Celery worker killed with SIGKILL in the middle of a batch (issue 13): nothing is lost,
nothing is issued twice, and no certificate is left without its escrow.

`celery -A portal worker` processes (prefork, two pool processes: tests/worker_testing.py) on the
real Redis (127.0.0.1:6379, databases 5 and 6 by default, on a queue of each test's own) and the
pytest-django test database on PostgreSQL. A batch of ec-p256 requests is approved with the
broker on (each approval queues `enrollment.certificate_request_issue`); the worker is killed, its
whole process group at once, once some are issued and while others are in its hands; a new worker
is started and the batch must settle complete.

What brings the killed worker's messages back is what production relies on, with short timeouts:
- the Redis transport's visibility timeout (PORTAL_BROKER_VISIBILITY_TIMEOUT): the messages the
  dead worker took and never acknowledged go back to the queue, and a live worker runs them;
- the issuance sweep (`issuance-sweep` on beat, PORTAL_ISSUANCE_STUCK_SECONDS): with the
  production visibility timeout of an hour, the requests still `approved` are queued again;
- when only a pool process dies (the OOM killer) and its worker lives, `reject_on_worker_lost`
  puts the message back at once.
A message the dead worker held may be of a request it had issued (committed, not yet
acknowledged): delivered again, it does nothing.

PostgreSQL only: the worker processes write to the test database from outside this process.
"""

from __future__ import annotations

import ast
import contextlib
import os
import signal
import socket
import time

import pytest
from django.db import connection
from django.db.models import Count
from portal_testing import require_redis
from worker_testing import CeleryWorkers, broker_on, database_sessions, wait_until

from audit.chain import audit_chain_breaks
from audit.models import AuditEvent
from enrollment.models import Certificate, CertificateRequest
from escrow.models import EscrowRecord, PickupCopy

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the worker processes share the test database: PostgreSQL only",
    ),
    pytest.mark.django_db(transaction=True),
]

REDIS_URL = os.environ.get("PORTAL_TEST_KILL_REDIS_URL", "redis://127.0.0.1:6379/5")
# The test with a short visibility timeout has a Redis database of its own: its worker restores
# every unacknowledged message of the database past that timeout, a parallel run's too (xdist),
# where the sweep test expects the dead worker's messages to stay unacknowledged.
SHORT_VISIBILITY_REDIS_URL = os.environ.get("PORTAL_TEST_KILL_SHORT_VISIBILITY_REDIS_URL", "redis://127.0.0.1:6379/6")
BATCH = 30
KILL_AFTER = 6  # issued when the worker is killed; the rest are queued or in its hands
VISIBILITY_SECONDS = 3
SETTLE_SECONDS = 45.0
# The default visibility timeout (whatever the environment says), and no restore scan that a kill
# could interrupt holding the broker's restore lock (restores would then stall for 5 minutes).
LONG_VISIBILITY = {"PORTAL_BROKER_VISIBILITY_TIMEOUT": "3600", "PORTAL_BROKER_RESTORE_SECONDS": "3600"}


@pytest.fixture
def workers(transactional_db, tmp_path, settings):
    """Workers on a queue of this test's own; approval in this process queues onto it."""
    with _workers_on(REDIS_URL, directory=tmp_path, settings=settings) as started:
        yield started


@pytest.fixture
def short_visibility_workers(transactional_db, tmp_path, settings):
    with _workers_on(SHORT_VISIBILITY_REDIS_URL, directory=tmp_path, settings=settings) as started:
        yield started


@contextlib.contextmanager
def _workers_on(broker_url: str, *, directory, settings):
    # Stopped before the test database's teardown (the fixtures ask for transactional_db first).
    require_redis(broker_url)
    queue = f"kill-test-{socket.gethostname()}-{os.getpid()}-{time.monotonic_ns()}"
    settings.CELERY_BROKER_URL = broker_url
    with (
        broker_on(broker_url=broker_url, queue=queue),
        CeleryWorkers(broker_url=broker_url, queue=queue, directory=directory) as started,
    ):
        yield started


@pytest.fixture
def batch(pki, make_user, approver) -> list[int]:
    """BATCH pending ec-p256 requests, one per employee."""
    from enrollment.services.requests import certificate_request_create

    ids = []
    for number in range(BATCH):
        user = make_user(f"batch{number:02d}", given_name="Kim", surname=f"Number{number}")
        ids.append(certificate_request_create(employee=user.employee, submitted_by=user, key_type="ec-p256").pk)
    return ids


def _approve(workers: CeleryWorkers, request_ids: list[int], approver) -> None:
    """Approve the batch before any worker runs: BATCH messages wait in the queue."""
    from enrollment.services.requests import certificate_request_approve

    for request_id in request_ids:
        decided = certificate_request_approve(request_id=request_id, approver=approver)
        assert decided.state == "approved", f"request #{request_id} is {decided.state} with the broker on"
    # A send that fails is only logged (enrollment.tasks._enqueue): check that all arrived.
    assert workers.queue_length() == len(request_ids), "the approvals did not all reach the queue"


def _states(request_ids: list[int]) -> dict[str, int]:
    rows = CertificateRequest.objects.filter(pk__in=request_ids).values("state").annotate(count=Count("pk"))
    return {row["state"]: row["count"] for row in rows}


def _issued(request_ids: list[int]) -> int:
    return CertificateRequest.objects.filter(pk__in=request_ids, state="issued").count()


def _kill_mid_batch(workers: CeleryWorkers, worker, request_ids: list[int]) -> dict[str, dict]:
    """SIGKILL `worker` once KILL_AFTER are issued, at an instant it holds a request not yet issued.

    The messages it held unacknowledged (tag -> task, id, kwargs, state_at_kill). To know what it
    held at the instant of the kill, the worker is frozen first (SIGSTOP) and its statements in
    flight let finish; if it holds no request still `approved` (it had just committed), it is let
    run a moment and frozen again.
    """
    wait_until(
        lambda: _issued(request_ids) >= KILL_AFTER or not worker.alive(),
        timeout=SETTLE_SECONDS,
        interval=0.01,
        message=lambda: (
            f"{KILL_AFTER} issued expected before the kill, states {_states(request_ids)}:\n{workers.logs()}"
        ),
    )
    assert worker.alive(), f"the worker died on its own:\n{workers.logs()}"
    sessions = database_sessions()
    assert sessions <= 3, f"{sessions} database sessions for one worker of two pool processes"
    while True:
        worker.pause()
        wait_until(lambda: database_sessions(running=True) == 0, timeout=10, message="statements run on, frozen")
        lost = workers.unacknowledged()
        for message in lost.values():
            message["state_at_kill"] = _state_of(message["request_id"])
        if any(message["state_at_kill"] == "approved" for message in lost.values()):
            break
        assert _issued(request_ids) < BATCH - 2, f"the batch ran out before a kill mid-task:\n{workers.logs()}"
        worker.resume()
        time.sleep(0.03)
    issued_at_kill = _issued(request_ids)
    worker.kill()
    # Its sessions end (PostgreSQL sees the sockets close), their transactions rolled back.
    wait_until(lambda: database_sessions() == 0, timeout=10, message="the killed worker's sessions stay open")
    assert all(message["task"] == "enrollment.certificate_request_issue" for message in lost.values()), lost
    assert _issued(request_ids) == issued_at_kill, "a killed worker issued"
    # Whatever the kill interrupted was one transaction: rolled back, nothing half-written.
    _assert_no_duplicate_and_nothing_without_escrow(request_ids)
    held = {message["request_id"]: message["state_at_kill"] for message in lost.values()}
    print(f"killed with {issued_at_kill} of {BATCH} issued, holding {held}")  # shown with -s
    return lost


def _state_of(request_id: int) -> str:
    return CertificateRequest.objects.get(pk=request_id).state


def _assert_no_duplicate_and_nothing_without_escrow(request_ids: list[int]) -> None:
    certificates = Certificate.objects.filter(request_id__in=request_ids)
    per_request = dict(certificates.values_list("request_id").annotate(count=Count("pk")))
    assert all(count == 1 for count in per_request.values()), f"duplicate certificates: {per_request}"
    issued = set(CertificateRequest.objects.filter(pk__in=request_ids, state="issued").values_list("pk", flat=True))
    assert set(per_request) == issued, "a certificate for a request not issued, or an issued request without one"
    certificate_ids = set(certificates.values_list("pk", flat=True))
    assert set(EscrowRecord.objects.values_list("certificate_id", flat=True)) == certificate_ids
    assert set(PickupCopy.objects.values_list("certificate_id", flat=True)) == certificate_ids
    assert EscrowRecord.objects.count() == PickupCopy.objects.count() == len(certificate_ids)


def _settle(workers: CeleryWorkers, request_ids: list[int]) -> None:
    """Until every request is issued and the queue holds nothing, waiting or unacknowledged."""
    wait_until(
        lambda: _issued(request_ids) == BATCH or CertificateRequest.objects.filter(state="failed").exists(),
        timeout=SETTLE_SECONDS,
        message=lambda: f"the batch did not complete: {_states(request_ids)}:\n{workers.logs()}",
    )
    failed = list(CertificateRequest.objects.filter(state="failed").values_list("pk", "reason"))
    assert not failed, f"failed requests: {failed}:\n{workers.logs()}"
    wait_until(
        lambda: workers.queue_length() == 0 and not workers.unacknowledged(),
        timeout=SETTLE_SECONDS,
        message=lambda: f"messages left: {workers.queue_length()} queued, {workers.unacknowledged()} unacknowledged",
    )


def _assert_settled(request_ids: list[int]) -> None:
    assert _states(request_ids) == {"issued": BATCH}
    assert not CertificateRequest.objects.filter(state="approved").exists()
    _assert_no_duplicate_and_nothing_without_escrow(request_ids)
    assert Certificate.objects.count() == BATCH
    issued_events = AuditEvent.objects.filter(action="certificate.issued")
    assert issued_events.count() == BATCH
    assert len(set(issued_events.values_list("object_id", flat=True))) == BATCH
    assert audit_chain_breaks(AuditEvent.objects.order_by("id").iterator()) is None


def test_a_killed_workers_messages_come_back_after_the_visibility_timeout(short_visibility_workers, batch, approver):
    workers = short_visibility_workers
    workers.restore_lock_clear_stale()
    _approve(workers, batch, approver)
    # This worker never looks for messages to restore (a kill then cannot interrupt it holding
    # the broker's restore lock, which would stall restoring for unacked_mutex_expire).
    timing = {"PORTAL_BROKER_VISIBILITY_TIMEOUT": str(VISIBILITY_SECONDS)}
    first = workers.start("a", environment={**timing, "PORTAL_BROKER_RESTORE_SECONDS": "3600"})
    lost = _kill_mid_batch(workers, first, batch)

    workers.start("b", environment={**timing, "PORTAL_BROKER_RESTORE_SECONDS": "1"})
    _settle(workers, batch)
    # The very messages the dead worker held were restored and run by the new one (nothing else
    # puts them back: the worker that would have rejected them is dead).
    log = workers.workers[1].log_text()
    for message in lost.values():
        assert f"[{message['id']}] received" in log, f"{message} was not delivered again:\n{workers.logs()}"
    _assert_settled(batch)


def test_the_sweep_requeues_what_a_killed_worker_held_with_the_production_visibility_timeout(workers, batch, approver):
    _approve(workers, batch, approver)
    first = workers.start("a", environment=LONG_VISIBILITY)
    lost = _kill_mid_batch(workers, first, batch)

    sweep = {"PORTAL_ISSUANCE_STUCK_SECONDS": "2", "PORTAL_ISSUANCE_SWEEP_SECONDS": "1"}
    workers.start("b", beat=True, environment={**LONG_VISIBILITY, **sweep})
    wait_until(
        lambda: _issued(batch) == BATCH or CertificateRequest.objects.filter(state="failed").exists(),
        timeout=SETTLE_SECONDS,
        message=lambda: f"the batch did not complete: {_states(batch)}:\n{workers.logs()}",
    )
    # Still held for the dead worker (an hour): it was the sweep, not a redelivery.
    assert set(workers.unacknowledged()) >= set(lost)
    assert not any(f"[{message['id']}] received" in workers.workers[1].log_text() for message in lost.values())
    # The request the dead worker had in its hands could only be issued by being queued again.
    assert "Issuance sweep: queued" in workers.workers[1].log_text(), workers.logs()
    wait_until(lambda: workers.queue_length() == 0, timeout=SETTLE_SECONDS, message="the sweep's messages stay queued")
    _assert_settled(batch)


def test_a_pool_process_killed_mid_task_is_requeued_at_once(workers, batch, approver):
    """One pool process dies (the OOM killer), its worker lives: with `reject_on_worker_lost` the
    message goes back to the queue at once, not after the visibility timeout (the production hour)."""
    _approve(workers, batch, approver)
    worker = workers.start("a", environment=LONG_VISIBILITY)
    wait_until(
        lambda: _issued(batch) >= KILL_AFTER,
        timeout=SETTLE_SECONDS,
        interval=0.01,
        message=lambda: f"{KILL_AFTER} issued expected, states {_states(batch)}:\n{workers.logs()}",
    )
    interrupted = _kill_a_busy_pool_process(workers, worker, batch)
    _settle(workers, batch)
    assert worker.alive(), f"the worker itself died:\n{workers.logs()}"
    log = worker.log_text()
    assert "WorkerLostError" in log, log
    assert log.count(f"[{interrupted}] received") == 2, f"task {interrupted} was not delivered again:\n{log}"
    _assert_settled(batch)


def _kill_a_busy_pool_process(workers: CeleryWorkers, worker, request_ids: list[int]) -> str:
    """SIGKILL the pool process of a task whose request is not issued yet; the task's id.

    The worker is frozen (SIGSTOP) for the check: a request still `approved` then is one its pool
    process has not committed, so that process is in the middle of it when killed."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        assert _issued(request_ids) < BATCH - 2, f"the batch ran out before a kill mid-task:\n{workers.logs()}"
        running = [task for task in workers.active(worker) if task.get("worker_pid")]
        if not running:
            time.sleep(0.01)
            continue
        task = running[0]
        kwargs = task["kwargs"] if isinstance(task["kwargs"], dict) else ast.literal_eval(task["kwargs"])
        worker.pause()
        try:
            wait_until(lambda: database_sessions(running=True) == 0, timeout=10, message="statements run on, frozen")
            if _state_of(kwargs["request_id"]) == "approved":
                os.kill(task["worker_pid"], signal.SIGKILL)
                return task["id"]
        finally:
            worker.resume()
        time.sleep(0.03)
    raise AssertionError(f"no pool process was killed in the middle of a task:\n{workers.logs()}")
