"""Where one issuance's time goes: the worker's service, profiled in this process (cProfile, SQL count)."""

from __future__ import annotations

import os
import time

from .cases_workers import approve_batch, pending_batch
from .worker_pool import REDIS_URL
from .world import World

# What the worker's task spends its time on, measured in this process on the same service.
PROFILED = {
    "key generation": "generate_private_key",
    "pkilint": "lint_before_signing",
    "signing": "sign_certificate",
    "escrow (CMS)": "escrow_record_create",
    "pickup copy": "pickup_copy_create",
    "audit chain": "audit_record",
    "mail (outbox)": "notify_certificate_ready",
    "model validation": "full_clean",
    "the transaction": "_issuance_record",
}


def profile_issuance(world: World, *, key_type: str = "ec-p256", count: int = 50) -> dict:
    """SQL statements per issuance and the share of each step, through `certificate_request_issue`."""
    import cProfile
    import pstats

    import redis
    from django.db import connection

    from enrollment.services.issuance import certificate_request_issue

    queue = f"bench-profile-{os.getpid()}"  # approvals' tasks go nowhere: this process issues
    request_ids = pending_batch(world, key_type=key_type, count=count)
    approve_batch(world, request_ids, queue=queue)
    redis.Redis.from_url(REDIS_URL).delete(queue)
    statements = 0

    def counted(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    profile = cProfile.Profile()
    started = time.perf_counter()
    with connection.execute_wrapper(counted):
        profile.enable()
        for request_id in request_ids:
            certificate_request_issue(request_id=request_id)
        profile.disable()
    seconds = time.perf_counter() - started
    cumulative: dict[str, float] = {}
    for (_file, _line, function), (_cc, _nc, _tt, ct, _callers) in pstats.Stats(profile).stats.items():
        cumulative[function] = max(cumulative.get(function, 0.0), ct)
    total = (
        sum(
            ct
            for (_f, _l, function), (_c, _n, _t, ct, _r) in pstats.Stats(profile).stats.items()
            if function == "certificate_request_issue"
        )
        or seconds
    )
    return {
        "key_type": key_type,
        "issuances": count,
        "ms_per_issuance": round(seconds / count * 1000, 2),
        "sql_statements_per_issuance": round(statements / count, 1),
        "share": {label: round(cumulative.get(name, 0.0) / total, 3) for label, name in PROFILED.items()},
    }
