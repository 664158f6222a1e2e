#!/usr/bin/env python
"""The portal's benchmark suite: each hot path against raw `cryptography`, in one run.

    .venv/bin/python bench/run.py                  # SQLite in a temporary file, a few minutes at most
    .venv/bin/python bench/run.py --quick          # seconds: what CI and tests/bench run
    .venv/bin/python bench/run.py --json out.json  # the figures as JSON too
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench .venv/bin/python bench/run.py

Prints a table of ratios (portal operations per second / raw operations per second, raw and
portal interleaved, medians of the rounds: see bench/harness.py) and ends with one JSON line
of the figures. Everything is throwaway: the data directory, the CA keys, and the database
(a temporary SQLite file; with DATABASE_URL, Django's test database on that server).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: bench/ is a package of the project
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Result, setup_django, table, teardown_django

BENCHMARKS = ("issuance", "pkcs12", "ocsp", "crl", "revocation", "audit", "ldap", "http", "scale", "workers")
# Not in a default run (--only names them): "scale" fills 300,000 audit events and 100,000 requests
# and certificates (minutes); "workers" needs PostgreSQL.
DEFAULT = ("issuance", "pkcs12", "ocsp", "crl", "revocation", "audit", "ldap", "http")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few rounds and small tables: seconds, for CI")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=None, help=f"run these (default: {' '.join(DEFAULT)}, and workers on PostgreSQL)")
    parser.add_argument("--bulk-count", type=int, help="employees enrolled and issued by the workers (default 2000, quick 50)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per benchmark (default 5, quick 2)")
    parser.add_argument("--crl-count", type=int, help="revoked certificates on the CRL (default 20000, quick 300)")
    parser.add_argument("--audit-events", type=int, help="audit events in the log (default 5000, quick 200)")
    parser.add_argument("--ca-key-type", default="ec-p384", choices=["ec-p256", "ec-p384", "rsa-3072", "rsa-4096"])
    parser.add_argument("--database-url", help="PostgreSQL server for the scratch database (default: DATABASE_URL)")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (2 if args.quick else 5)
    if args.only is None:
        on_postgresql = (args.database_url or os.environ.get("DATABASE_URL", "")).startswith("postgres")
        args.only = list(DEFAULT) + (["workers"] if on_postgresql else [])
    args.crl_count = args.crl_count if args.crl_count is not None else (300 if args.quick else 20_000)
    args.audit_events = args.audit_events if args.audit_events is not None else (200 if args.quick else 5_000)
    if args.rounds < 1 or args.crl_count < 1 or args.audit_events < 1:
        parser.error("--rounds, --crl-count and --audit-events must be positive")
    return args


def run(args: argparse.Namespace) -> list[Result]:
    from bench import cases_keys, cases_status
    from bench.world import build_world

    quick, rounds = args.quick, args.rounds
    ops = 1 if quick else 4  # operations per round for the fast paths (ec keys, OCSP, pages)
    world = build_world(ca_key_type=args.ca_key_type)
    results: list[Result] = []
    # The CRL first: later benchmarks then run with a large stored CRL on the issuing CA, as in production.
    if "crl" in args.only:
        results.append(cases_status.crl(world, count=args.crl_count, rounds=rounds))
    if "issuance" in args.only:
        results.append(cases_keys.issuance(world, key_type="ec-p256", rounds=rounds, per_round=ops))
        results.append(cases_keys.issuance(world, key_type="rsa-3072", rounds=rounds, per_round=1))
    if "pkcs12" in args.only:
        for fmt in ("modern", "compatible"):
            results.append(
                cases_keys.pkcs12_download(world, key_type="rsa-3072", fmt=fmt, rounds=rounds, per_round=ops)
            )
    if "ocsp" in args.only:
        certificate = cases_keys.portal_issue(world, "ec-p256")
        results += cases_status.ocsp_responses(world, certificate=certificate, rounds=rounds, per_round=ops * 5)
    if "revocation" in args.only:
        revoked = args.crl_count if "crl" in args.only else 0
        results.append(cases_status.revocation_cost(world, revoked=revoked, rounds=rounds, per_round=ops * 2))
    if "audit" in args.only:
        results.append(cases_status.audit_changelist(world, events=args.audit_events, rounds=rounds, per_round=ops))
    if "ldap" in args.only:
        from bench import cases_ldap

        results.append(cases_ldap.ldap_publish_ratio(world, count=30 if quick else 1000, rounds=rounds))
    if "http" in args.only:  # gunicorn with two workers, as the systemd unit starts it
        from bench import cases_http

        http_results, args.http_figures = cases_http.run(world, quick=quick, rounds=rounds)
        results += http_results
    if "workers" in args.only:
        results += _workers(world, args)
    if "scale" in args.only:  # last: it grows the tables
        from bench import cases_scale

        results += cases_scale.changelist_scaling(world, quick=quick, rounds=rounds)
    return results


def _workers(world, args) -> list[Result]:
    from django.db import connection

    from bench import cases_workers

    if connection.vendor != "postgresql":
        print("workers: not run, the worker benchmarks need PostgreSQL (DATABASE_URL)", file=sys.stderr)
        return []
    results, args.worker_figures = cases_workers.run(
        # At most 3 rounds (its own default): a round of the two-worker speedup alone issues 800
        # certificates (400 on one worker, 400 on two), and with 5 rounds `make bench` took 22 minutes here (issue 13: under 20).
        world, workdir=Path(os.environ["PORTAL_DATA_DIR"]).parent, quick=args.quick, rounds=min(args.rounds, 3),
        bulk_count=args.bulk_count or (50 if args.quick else 2000),
    )  # fmt: skip
    return results


def audit_chain_intact() -> bool:
    """After the run, the whole audit chain verifies: the portal's figures are with the chain intact."""
    from audit.models import AuditEvent
    from audit.selectors import audit_chain_status

    return audit_chain_status(limit=AuditEvent.objects.count() + 1).intact


def figures(results: list[Result], *, vendor: str, args: argparse.Namespace, seconds: float) -> dict:
    return {
        "database": vendor,
        "quick": args.quick,
        "rounds": args.rounds,
        "ca_key_type": args.ca_key_type,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average": [round(load, 2) for load in os.getloadavg()],
            "python": platform.python_version(),
        },
        "seconds": round(seconds, 1),
        "ratios": {result.name: result.ratio for result in results},
        "results": [result.as_json() for result in results],
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    workdir = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    started = time.perf_counter()
    try:
        vendor = setup_django(workdir)
        try:
            results = run(args)
            intact = audit_chain_intact()
        finally:
            teardown_django()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report = figures(results, vendor=vendor, args=args, seconds=time.perf_counter() - started)
    report["audit_chain_intact"] = intact
    report["workers"] = getattr(args, "worker_figures", {})
    report["figures"] = getattr(args, "http_figures", {})
    load = ", ".join(f"{value:.2f}" for value in report["machine"]["load_average"])
    title = (
        f"Portal vs raw cryptography ({vendor}, CA key {args.ca_key_type}, {args.rounds} interleaved rounds, "
        f"medians; {os.cpu_count()} CPUs, load {load})"
    )
    print(table(results, title=title))
    print()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if not intact:
        print("The audit chain does not verify after the run.", file=sys.stderr)
    seconds = {key: value for key, value in report["workers"].items() if key.endswith("_seconds")}
    print(json.dumps({**report["ratios"], **report["figures"], **seconds}, sort_keys=True))
    return 0 if intact else 1


if __name__ == "__main__":
    sys.exit(main())
