"""Benchmarks over HTTP: gunicorn with two workers, as deploy/systemd/portal-web.service starts it.

The server runs on the benchmark's throwaway database and data directory (the same CA keys and
secrets; production settings with *_FILE secrets, behind a "proxy" at 127.0.0.1 that says https)
on a loopback port of PORTAL_BENCH_HTTP_PORTS, and is stopped when the run ends. The clients are
one asyncio loop of keep-alive connections (cheap: the cores are for the server). The raw
baselines run on two processes, as the server does. Raw and portal rounds alternate, each for the
same time; each side's figure is the median of its rounds (bench/harness.py).

- `ocsp_ratio`: POST /ocsp/<ca> answers per second / raw `OCSPResponseBuilder` signing;
- `pkcs12_download_ratio`: POST /api/v1/certificates/<serial>/pkcs12/ (each owner with an API
  token; RSA-3072, modern) under 20 clients / raw PKCS#12 serialization of the same key, same
  format and iteration count (the encryption builder's default, as enrollment/pki/pkcs12.py);
  `pkcs12_download_p95_seconds` in its notes;
- `sqlite_concurrent_download_errors`: 20 downloads at once on the embedded SQLite (on another
  database: in a subprocess of its own on a fresh SQLite): the answers that are not 200 (a
  "database is locked" is a 503, core/outage.py).

    .venv/bin/python -m bench.cases_http [--quick] [--profile DIR]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from .harness import ROOT, Result
from .http_server import CLIENTS, PASSPHRASE, Load, Server, http_request, run_clients  # noqa: F401

# --- Raw baselines on two processes ---------------------------------------------------------------

_raw_work = None


def _raw_init(kind: str, material: dict) -> None:
    global _raw_work
    _raw_work = {"ocsp": _raw_ocsp_work, "pkcs12": _raw_pkcs12_work}[kind](**material)


def _raw_loop(seconds: float) -> int:
    deadline, done = time.perf_counter() + seconds, 0
    while time.perf_counter() < deadline:
        _raw_work()
        done += 1
    return done


def _raw_ocsp_work(*, request: bytes, subject: bytes, issuer: bytes, responder_key: bytes, responder: bytes):
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509 import ocsp

    from .cases_keys import _ca_hash

    subject_certificate, issuer_certificate = (x509.load_der_x509_certificate(der) for der in (subject, issuer))
    key = serialization.load_der_private_key(responder_key, password=None)
    responder_certificate = x509.load_der_x509_certificate(responder)

    def work() -> None:
        parsed = ocsp.load_der_ocsp_request(request)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=subject_certificate, issuer=issuer_certificate, algorithm=parsed.hash_algorithm,
                cert_status=ocsp.OCSPCertStatus.GOOD, this_update=now, next_update=now + timedelta(hours=24),
                revocation_time=None, revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, responder_certificate)
            .certificates([responder_certificate])
        )  # fmt: skip
        builder.sign(key, _ca_hash(key)).public_bytes(serialization.Encoding.DER)

    return work


def _raw_pkcs12_work(*, key: bytes, certificate: bytes, chain: list[bytes], fmt: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    from .cases_keys import _PKCS12_ALGORITHMS

    private_key = serialization.load_der_private_key(key, password=None)
    subject = x509.load_der_x509_certificate(certificate)
    cas = [pkcs12.PKCS12Certificate(x509.load_der_x509_certificate(der), b"Bench CA") for der in chain]
    algorithm, mac_hash = _PKCS12_ALGORITHMS[fmt]

    def work() -> None:
        encryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .key_cert_algorithm(algorithm)
            .hmac_hash(mac_hash)
            .build(PASSPHRASE.encode())
        )
        pkcs12.serialize_key_and_certificates(b"Bench Person S/MIME (Bench CA)", private_key, subject, cas, encryption)

    return work


class RawPair:
    """Two processes doing the raw work for a given time (forked: a spawned child would re-run the
    caller's main module; the raw work touches neither Django nor the database)."""

    def __init__(self, kind: str, material: dict):
        context = get_context("fork")
        self.pool = ProcessPoolExecutor(2, mp_context=context, initializer=_raw_init, initargs=(kind, material))

    def per_second(self, seconds: float) -> float:
        return sum(future.result() for future in [self.pool.submit(_raw_loop, seconds) for _ in range(2)]) / seconds

    def close(self) -> None:
        self.pool.shutdown()


def _measure(name: str, work: str, raw: RawPair, portal, *, rounds: int, seconds: float, **notes) -> Result:
    """Warm-up, then raw, portal, raw, portal...; the portal's side counts answers of 200 only, any
    other (a 503 "database is locked") is in the notes' `errors`."""
    try:
        raw.per_second(min(seconds, 0.3))
        portal(min(seconds, 0.5))
        raw_rates, loads = [], []
        for _ in range(rounds):
            raw_rates.append(raw.per_second(seconds))
            loads.append(portal(seconds))
    finally:
        raw.close()
    statuses: dict[str, int] = {}
    for load in loads:
        for status, count in load.statuses.items():
            statuses[str(status)] = statuses.get(str(status), 0) + count
    if not statuses.get("200"):
        raise RuntimeError(f"{name}: no answer was 200: {statuses}")
    latencies = sorted(latency for load in loads for latency in load.latencies)
    return Result(
        name=name, work=work, raw_per_second=statistics.median(raw_rates), rounds=rounds,
        portal_per_second=statistics.median(load.statuses.get(200, 0) / load.seconds for load in loads),
        operations=len(latencies),
        notes={"p50_seconds": round(latencies[len(latencies) // 2], 4),
               "p95_seconds": round(latencies[int(len(latencies) * 0.95)], 4), "statuses": statuses,
               "errors": sum(load.errors for load in loads), "reconnects": sum(load.reconnects for load in loads),
               **notes},
    )  # fmt: skip


# --- The cases --------------------------------------------------------------------------------------


def ocsp_ratio(world, server: Server, *, rounds: int, seconds: float, clients: int = 8) -> Result:
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    from .cases_keys import portal_issue
    from .cases_status import _ocsp_requests, _responder

    certificate = portal_issue(world, "ec-p256")
    request = _ocsp_requests(world, [certificate.serial], 1)[0]
    responder_key, responder_certificate = _responder(world)  # a key of the portal responder's type
    raw = RawPair("ocsp", {
        "request": request, "subject": bytes(certificate.der), "issuer": world.raw.ca_certificate.public_bytes(Encoding.DER),
        "responder_key": responder_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption()),
        "responder": responder_certificate.public_bytes(Encoding.DER),
    })  # fmt: skip
    posts = [http_request(f"/ocsp/{world.ca.slug}", request, content_type="application/ocsp-request")] * clients
    return _measure(
        "ocsp_ratio", f"OCSPResponseBuilder on 2 processes vs POST /ocsp/<ca>, gunicorn x2, {clients} clients",
        raw, lambda s: run_clients(server.port, posts, seconds=s, check=_ocsp_good), rounds=rounds, seconds=seconds,
        clients=clients,
    )  # fmt: skip


def _ocsp_good(body: bytes) -> None:
    from cryptography.x509 import ocsp

    answer = ocsp.load_der_ocsp_response(body)
    if answer.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL or answer.certificate_status.name != "GOOD":
        raise RuntimeError(f"OCSP over HTTP answered {answer.response_status}")


def download_owners(world, *, count: int, key_type: str = "rsa-3072") -> list[tuple[object, str]]:
    """`count` owners, each with an issued, escrowed certificate (its pickup copy downloadable
    any number of times while the window is open: escrow.services.pickups) and an API token."""
    from portal.services import api_token_create

    from .cases_keys import portal_issue

    owners = []
    for _ in range(count):
        certificate = portal_issue(world, key_type)
        if not hasattr(certificate, "escrow"):
            raise RuntimeError("the download benchmarks need escrowed keys (a signing-only key's window shortens)")
        owners.append((certificate, api_token_create(user=certificate.employee.user, name="bench").plaintext))
    return owners


def download_requests(owners, *, clients: int, fmt: str = "modern") -> list[bytes]:
    """Client i downloads as owner i (modulo the owners): POST /api/v1/certificates/<serial>/pkcs12/."""
    body = json.dumps({"passphrase": PASSPHRASE, "format": fmt}).encode()
    return [
        http_request(f"/api/v1/certificates/{certificate.serial}/pkcs12/", body, content_type="application/json",
                     headers={"Authorization": f"Bearer {token}"})
        for certificate, token in (owners[i % len(owners)] for i in range(clients))
    ]  # fmt: skip


def _pkcs12_opens(body: bytes) -> None:
    from enrollment.pki.pkcs12 import load_pkcs12

    if load_pkcs12(body, PASSPHRASE).key is None:
        raise RuntimeError("the downloaded PKCS#12 holds no key")


def pkcs12_download_ratio(
    world, server: Server, *, owners: list, rounds: int, seconds: float, clients: int = CLIENTS, fmt: str = "modern"
) -> Result:
    from cryptography.hazmat.primitives.serialization import Encoding

    from enrollment.pki.keys import private_key_to_der
    from escrow.services.pickups import pickup_copy_open

    certificate = owners[0][0]
    key = pickup_copy_open(certificate=certificate)  # the raw side's key: the certificate's own
    chain = [ca.certificate.public_bytes(Encoding.DER) for ca in certificate.issuer.chain()]
    raw = RawPair("pkcs12", {"key": private_key_to_der(key), "certificate": bytes(certificate.der), "chain": chain,
                             "fmt": fmt})  # fmt: skip
    posts = download_requests(owners, clients=clients, fmt=fmt)
    return _measure(
        "pkcs12_download_ratio", f"PKCS#12 ({fmt}, rsa-3072) on 2 processes vs POST /api/v1/certificates/<serial>/"
        f"pkcs12/, gunicorn x2, {clients} clients", raw,
        lambda s: run_clients(server.port, posts, seconds=s, check=_pkcs12_opens), rounds=rounds, seconds=seconds,
        clients=clients, owners=len(owners),
    )  # fmt: skip


def sqlite_concurrent_download_errors(world, server: Server | None, *, owners: list, repeat: int = 1) -> dict:
    """CLIENTS downloads at once, `repeat` each, on the embedded SQLite: how many were not 200.

    On another database, the same in a subprocess on a fresh SQLite (python -m bench.cases_http --sqlite).
    """
    from django.db import connection

    if connection.vendor != "sqlite" or server is None:
        return _sqlite_in_subprocess(repeat=repeat)
    locked_before = server.log_count("database is locked")
    load = run_clients(server.port, download_requests(owners, clients=CLIENTS), count=repeat, check=_pkcs12_opens)
    latencies = sorted(load.latencies)
    return {
        "sqlite_concurrent_download_errors": load.errors,
        "downloads": len(latencies),
        "statuses": {str(status): count for status, count in sorted(load.statuses.items())},
        "database_is_locked_in_log": server.log_count("database is locked") - locked_before,
        "p95_seconds": round(latencies[int(len(latencies) * 0.95)], 3),
    }


def _sqlite_in_subprocess(*, repeat: int) -> dict:
    skip = ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "PORTAL_DATA_DIR", "PORTAL_CA_KEY_DIR")
    environment = {key: value for key, value in os.environ.items() if key not in skip}
    command = [sys.executable, "-m", "bench.cases_http", "--sqlite", f"--repeat={repeat}"]
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"the SQLite download benchmark failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(world, *, quick: bool, rounds: int) -> tuple[list[Result], dict]:
    """Every HTTP case on one server (what bench/run.py calls): the Results, and the figures that are no ratio."""
    from django.db import connection

    seconds = 0.5 if quick else 4.0
    owners = download_owners(world, count=2 if quick else CLIENTS)
    with tempfile.TemporaryDirectory(prefix="portal-bench-http-") as workdir, Server(workdir=Path(workdir)) as server:
        results = [
            ocsp_ratio(world, server, rounds=rounds, seconds=seconds),
            pkcs12_download_ratio(world, server, owners=owners, rounds=rounds, seconds=seconds),
        ]
        on_sqlite = connection.vendor == "sqlite"
        sqlite = sqlite_concurrent_download_errors(world, server if on_sqlite else None, owners=owners, repeat=1)
    results[1].notes["sqlite_downloads"] = sqlite
    figures = {
        "pkcs12_download_p95_seconds": results[1].notes["p95_seconds"],
        "sqlite_concurrent_download_errors": sqlite["sqlite_concurrent_download_errors"],
    }
    return results, figures


def profile(world, *, workdir: Path, directory: Path, seconds: float) -> None:
    """Each load against one sync worker (threads=1: cProfile sees the requests); the per-request times."""
    import pstats

    owners = download_owners(world, count=4)
    from .cases_status import _ocsp_requests

    ocsp = http_request(f"/ocsp/{world.ca.slug}", _ocsp_requests(world, [owners[0][0].serial], 1)[0],
                        content_type="application/ocsp-request")  # fmt: skip
    for name, posts in (("ocsp", [ocsp] * 4), ("pkcs12", download_requests(owners, clients=4))):
        (directory / name).mkdir(parents=True, exist_ok=True)
        with Server(workdir=workdir, workers=1, threads=1, profile_dir=directory / name) as server:
            load = run_clients(server.port, posts, seconds=seconds)
        stats = pstats.Stats(*map(str, (directory / name).glob("*.prof")))
        requests = sum(load.statuses.values())
        print(f"{name}: {requests / seconds:.1f}/s on one profiled sync worker; ms per request (cumulative):")
        for (file, line, function), (_, calls, _, cumulative, _) in sorted(stats.stats.items(), key=lambda i: -i[1][3]):
            if calls >= requests // 2 and cumulative / requests > 0.0002 and "bootstrap" not in file:
                where = f"{Path(file).name}:{line} {function}"
                print(f"  {cumulative / requests * 1000:7.2f}  {calls / requests:5.1f}x  {where}")


def main(argv=None) -> int:
    import argparse
    import shutil

    from .harness import setup_django, table, teardown_django
    from .world import build_world

    parser = argparse.ArgumentParser(description="The portal over HTTP (gunicorn) against raw cryptography")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--sqlite", action="store_true", help="only the SQLite downloads: their figures as JSON")
    parser.add_argument("--repeat", type=int, default=1, help="downloads per client (--sqlite)")
    parser.add_argument("--profile", type=Path, help="profile one gunicorn worker per load into this directory")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 5)
    workdir = Path(tempfile.mkdtemp(prefix="portal-bench-http-"))
    try:
        vendor = setup_django(workdir)
        try:
            world = build_world(ca_key_type="ec-p384")
            if args.sqlite:
                owners = download_owners(world, count=2)
                with Server(workdir=workdir) as server:
                    figures = sqlite_concurrent_download_errors(world, server, owners=owners, repeat=args.repeat)
                print(json.dumps(figures))
                return 0
            if args.profile:
                profile(world, workdir=workdir, directory=args.profile.resolve(), seconds=2.0 if args.quick else 10.0)
                return 0
            results, figures = run(world, quick=args.quick, rounds=rounds)
        finally:
            teardown_django()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(table(results, title=f"The portal over HTTP ({vendor}, gunicorn x2, {rounds} interleaved rounds, medians)"))
    print(json.dumps({result.name: result.notes for result in results}))
    print(json.dumps({**{result.name: result.ratio for result in results}, **figures}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
