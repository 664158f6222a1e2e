"""Benchmarks of issuance on Celery workers (issue 13), on PostgreSQL with a real Redis broker.

Approval with a broker only records the decision; real `celery -A portal worker` processes,
started here on the benchmark's database and data directory (the same CA keys and secrets),
issue. The batch is approved first, onto a queue no worker consumes yet; then the workers are
told to consume it (`add_consumer`) and the clock runs until every request of the batch is
issued. So the figure is the workers' throughput, not the approving loop's.

- `issuance_<keytype>_ratio`: one worker's batch against the raw loop (cases_keys.raw_issue,
  one process) over the same count, interleaved round by round, medians;
- `issuance_two_workers_speedup`: the same batch on two worker processes against one (the
  Result's "raw" side is one worker, its "portal" side two: ratio = speedup);
- `bulk_ec_p256_10k_seconds`: `enroll --csv` of N employees (the batch's own path) with
  PORTAL_ENROLLMENT_AUTO_APPROVE on, two workers issuing while the rows are written; seconds
  until all are issued; the audit chain is verified afterwards.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench_workers \
        .venv/bin/python -m bench.cases_workers [--quick] [--bulk-count 10000]
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

from .cases_keys import raw_issue
from .harness import Result
from .worker_pool import WorkerPool, broker_on, default_queue
from .world import MAILBOX_DOMAIN, World

KEY_TYPES_QUICK = ("ec-p256", "rsa-3072")
KEY_TYPES_FULL = ("ec-p256", "ec-p384", "rsa-3072", "rsa-4096")
# Requests per round: enough for a second or more of work per round.
BATCH = {"ec-p256": 200, "ec-p384": 150, "rsa-3072": 16, "rsa-4096": 6}
BATCH_QUICK = {"ec-p256": 20, "ec-p384": 20, "rsa-3072": 3, "rsa-4096": 2}
WAIT_SECONDS = 900.0


def pending_batch(world: World, *, key_type: str, count: int) -> list[int]:
    from enrollment.services.requests import certificate_request_create

    ids = []
    for _ in range(count):
        user = world.new_employee()
        ids.append(certificate_request_create(employee=user.employee, submitted_by=user, key_type=key_type).pk)
    return ids


def approve_batch(world: World, request_ids: list[int], *, queue: str) -> None:
    """Approve each request with the broker on: the decisions commit, the tasks wait on `queue`."""
    from enrollment.services.requests import certificate_request_approve

    with default_queue(queue):
        for request_id in request_ids:
            request = certificate_request_approve(request_id=request_id, approver=world.approver)
            if request.state != "approved":
                raise RuntimeError(f"request #{request_id} is {request.state} after approval with the broker on")


def wait_issued(request_ids: list[int], *, timeout: float = WAIT_SECONDS) -> None:
    """Until every request is issued; a failed one ends the benchmark with its reason."""
    from enrollment.models import CertificateRequest

    requests = CertificateRequest.objects.filter(pk__in=request_ids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = requests.filter(state__in=["issued", "failed"]).count()
        if done == len(request_ids):
            failed = list(requests.filter(state="failed").values_list("pk", "reason")[:3])
            if failed:
                raise RuntimeError(f"the workers failed requests: {failed}")
            return
        time.sleep(0.02)
    raise RuntimeError(f"not all of {len(request_ids)} requests were issued within {timeout:.0f} s")


def _worker_batch_seconds(world: World, pool: WorkerPool, *, key_type: str, count: int, workers: int) -> float:
    """Queue `count` approved requests, let `workers` of the pool at them: the seconds the batch took them.

    A worker starts on a queue it is told to consume at its next poll of the broker (up to a
    second later), so the clock is the certificates' own: each worker's first certificate marks
    its start, and the remaining `count - workers` took from then to the last one.
    """
    from django.db.models import Max, Min

    from enrollment.models import Certificate

    if count <= workers:
        raise ValueError("a batch needs more requests than workers")
    queue = f"{pool.tag}-batch"
    request_ids = pending_batch(world, key_type=key_type, count=count)
    approve_batch(world, request_ids, queue=queue)
    pool.consume(queue, workers=workers)
    wait_issued(request_ids)
    pool.pause(queue)
    span = Certificate.objects.filter(request_id__in=request_ids).aggregate(
        first=Min("created_at"), last=Max("created_at")
    )
    return (span["last"] - span["first"]).total_seconds() * count / (count - workers)


def _raw_seconds(world: World, *, key_type: str, count: int, start: int) -> float:
    started = time.perf_counter()
    for index in range(start, start + count):
        raw_issue(world, key_type, index)
    return time.perf_counter() - started


def issuance_ratio(world: World, pool: WorkerPool, *, key_type: str, rounds: int, count: int) -> Result:
    """One worker's batch vs the raw loop over as many, interleaved; medians of the rounds."""
    _worker_batch_seconds(world, pool, key_type=key_type, count=2, workers=1)  # warm-up: imports, the CA key
    raw, portal = [], []
    for number in range(rounds):
        raw.append(_raw_seconds(world, key_type=key_type, count=count, start=number * count))
        portal.append(_worker_batch_seconds(world, pool, key_type=key_type, count=count, workers=1))
    return Result(
        name=f"issuance_{key_type.replace('-', '_')}_ratio",
        work="raw loop vs one Celery worker on PostgreSQL (approved batch until issued)",
        raw_per_second=count / statistics.median(raw),
        portal_per_second=count / statistics.median(portal),
        rounds=rounds,
        operations=count,
    )


def two_workers_speedup(world: World, pool: WorkerPool, *, key_type: str, rounds: int, count: int) -> Result:
    """The same batch on two worker processes vs one, interleaved; "raw" is one worker, "portal" two."""
    one, two = [], []
    for _ in range(rounds):
        one.append(_worker_batch_seconds(world, pool, key_type=key_type, count=count, workers=1))
        two.append(_worker_batch_seconds(world, pool, key_type=key_type, count=count, workers=2))
    return Result(
        name="issuance_two_workers_speedup",
        work=f"{key_type} batch: two Celery workers vs one (ratio = speedup)",
        raw_per_second=count / statistics.median(one),
        portal_per_second=count / statistics.median(two),
        rounds=rounds,
        operations=count,
        notes={"key_type": key_type},
    )


def _bulk_csv(count: int, *, offset: int) -> bytes:
    lines = ["username,mail,given_name,surname"]
    for number in range(offset, offset + count):
        lines.append(f"bulk{number},bulk{number}@{MAILBOX_DOMAIN},Bulk,Person{number}")
    return ("\n".join(lines) + "\n").encode()


def bulk_enroll_and_issue(world: World, pool: WorkerPool, *, count: int, workers: int = 2) -> dict:
    """`manage.py enroll --csv` of `count` employees with PORTAL_ENROLLMENT_AUTO_APPROVE on, until all are issued.

    The batch's path (enrollment.bulk_batches.enrollment_batch_run, what the command calls): every
    row's employee and request, approved by policy, its issuance queued to the two workers, which
    issue while the rows are still being written.
    """
    from django.conf import settings

    from audit.models import AuditEvent
    from audit.selectors import audit_chain_status
    from enrollment.bulk import bulk_file_read
    from enrollment.bulk_batches import enrollment_batch_run
    from enrollment.models import CertificateRequest

    queue = f"{pool.tag}-bulk"
    offset = CertificateRequest.objects.count()
    pool.consume(queue, workers=workers)
    previous = settings.PORTAL_ENROLLMENT_AUTO_APPROVE
    settings.PORTAL_ENROLLMENT_AUTO_APPROVE = True
    started = time.perf_counter()
    try:
        with default_queue(queue):
            outcome = enrollment_batch_run(
                actor=world.admin, rows=bulk_file_read(_bulk_csv(count, offset=offset), name="bench.csv"),
                source="bench.csv", key_type="ec-p256",
            )  # fmt: skip
    finally:
        settings.PORTAL_ENROLLMENT_AUTO_APPROVE = previous
    if outcome.written != count or not outcome.batch.approved_by_policy:
        raise RuntimeError(f"the batch wrote {outcome.written} of {count} rows: {outcome.plan.bad_rows[:3]}")
    enrolled = time.perf_counter()  # each row approved as it was written
    request_ids = list(outcome.batch.requests.values_list("pk", flat=True))
    wait_issued(request_ids, timeout=3600)
    issued = time.perf_counter()
    pool.pause(queue)
    status = audit_chain_status(limit=AuditEvent.objects.count() + 1)
    return {
        "bulk_ec_p256_10k_seconds" if count == 10_000 else f"bulk_ec_p256_{count}_seconds": round(issued - started, 2),
        "count": count,
        "workers": workers,
        "enroll_seconds": round(enrolled - started, 2),
        "issued_after_enrollment_seconds": round(issued - enrolled, 2),
        "issued_per_second": round(count / (issued - started), 1),
        "audit_events": status.count,
        "audit_chain_intact": status.intact,
    }


def run(
    world: World,
    *,
    workdir: Path,
    quick: bool,
    rounds: int,
    bulk_count: int | None = None,
    key_types: tuple[str, ...] | None = None,
) -> tuple[list[Result], dict]:
    """Every worker benchmark on two worker processes: the ratios, the speedup, and the bulk figures."""
    batch = BATCH_QUICK if quick else BATCH
    key_types = key_types or (KEY_TYPES_QUICK if quick else KEY_TYPES_FULL)
    logdir = workdir / "worker-logs"
    logdir.mkdir(exist_ok=True)
    pool = WorkerPool(count=2, logdir=logdir)
    # The broker for the control commands too; each batch's approvals name their own queue.
    with broker_on(pool.idle_queue), contextlib.closing(pool):
        pool.start()
        results = [
            issuance_ratio(world, pool, key_type=key_type, rounds=rounds, count=batch[key_type])
            for key_type in key_types
        ]
        results.append(two_workers_speedup(world, pool, key_type="ec-p256", rounds=rounds, count=batch["ec-p256"] * 2))
        bulk = bulk_enroll_and_issue(world, pool, count=bulk_count or (50 if quick else 10_000))
        from .cases_workers_profile import profile_issuance

        bulk["profile_ec_p256"] = profile_issuance(world, count=20 if quick else 200)
    return results, bulk


def main(argv=None) -> int:
    import argparse
    import json
    import shutil
    import tempfile

    from .harness import setup_django, table, teardown_django
    from .world import build_world

    parser = argparse.ArgumentParser(description="Issuance on Celery workers against raw cryptography")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--bulk-count", type=int, help="employees enrolled and issued (default 10000, quick 50)")
    parser.add_argument("--key-types", nargs="+", choices=KEY_TYPES_FULL)
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 3)
    workdir = Path(tempfile.mkdtemp(prefix="portal-bench-workers-"))
    try:
        vendor = setup_django(workdir)
        if vendor != "postgresql":
            print("The worker benchmarks need PostgreSQL: set DATABASE_URL=postgres://...", file=sys.stderr)
            teardown_django()
            return 2
        try:
            world = build_world(ca_key_type="ec-p384")
            results, bulk = run(
                world,
                workdir=workdir,
                quick=args.quick,
                rounds=rounds,
                bulk_count=args.bulk_count,
                key_types=tuple(args.key_types or ()) or None,
            )
        finally:
            teardown_django()
    finally:
        if not os.environ.get("PORTAL_BENCH_KEEP"):  # the worker logs are in there
            shutil.rmtree(workdir, ignore_errors=True)
    print(table(results, title=f"Issuance on Celery workers (PostgreSQL, {rounds} interleaved rounds, medians)"))
    print()
    print(json.dumps(bulk.pop("profile_ec_p256")))
    print(json.dumps({**{result.name: round(result.ratio, 3) for result in results}, **bulk}, sort_keys=True))
    return 0 if bulk["audit_chain_intact"] else 1


if __name__ == "__main__":
    sys.exit(main())
