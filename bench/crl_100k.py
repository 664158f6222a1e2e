#!/usr/bin/env python
"""Benchmark: a CRL for 100,000 revoked certificates, and OCSP responses per second.

    .venv/bin/python bench/crl_100k.py                # 100,000 rows, SQLite in a temp file
    DATABASE_URL=postgres://... .venv/bin/python bench/crl_100k.py   # on PostgreSQL
    .venv/bin/python bench/crl_100k.py --count 2000 --ocsp-requests 100   # quick

The database is a throwaway one (a temporary SQLite file, or a `portal_bench_<pid>`
database on the PostgreSQL server named by DATABASE_URL, dropped afterwards), and so are
the data directory and the CA key. The script creates a CA and COUNT revoked certificate
rows with bulk_create (minimal fields: crl_generate reads only serial, revoked_at and
revocation_reason), then measures in the same run:

- baseline: the naive CRL, loading Certificate ORM objects one by one
  (`for c in Certificate.objects.filter(...)`), building the same CRL;
- `enrollment.revocation.services.crl_generate`, which streams (serial, revoked_at, reason) tuples;

wall time (a run without tracing) and peak Python memory (a second run under
tracemalloc), and prints the figures with ratios against the baseline. Then it times
`enrollment.revocation.ocsp.ocsp_respond` over N requests for serials in the table.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REASONS = ["key_compromise", "superseded", "cessation_of_operation", "affiliation_changed", "privilege_withdrawn", ""]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="revoked certificates (default 100000)")
    parser.add_argument("--ocsp-requests", type=int, default=1000, help="OCSP requests to time (default 1000)")
    parser.add_argument(
        "--key-type", default="rsa-3072", help="CA key type: rsa-3072, rsa-4096, ec-p256, ec-p384 (default rsa-3072)"
    )
    parser.add_argument("--ocsp-signer", choices=["delegated", "ca"], default="delegated")
    args = parser.parse_args(argv)
    if args.count < 1 or args.ocsp_requests < 0:
        parser.error("--count must be positive and --ocsp-requests not negative")
    return args


def setup_django(workdir: Path) -> None:
    # Everything throwaway: data directory (dev secrets), CA keys, quiet logging.
    os.environ["PORTAL_DATA_DIR"] = str(workdir / "data")
    os.environ["PORTAL_CA_KEY_DIR"] = str(workdir / "data" / "ca")
    os.environ.setdefault("PORTAL_LOG_LEVEL", "WARNING")
    os.environ["PORTAL_DEBUG"] = "false"  # DEBUG keeps every SQL query in memory: not what production does
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    sys.path.insert(0, str(ROOT))
    import django
    from django.conf import settings

    django.setup()
    database = settings.DATABASES["default"]
    test_name = (
        str(workdir / "bench.sqlite3") if database["ENGINE"].endswith("sqlite3") else f"portal_bench_{os.getpid()}"
    )
    database.setdefault("TEST", {})["NAME"] = test_name


def create_rows(count: int, key_type: str):
    from cryptography.hazmat.primitives.serialization import Encoding
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from enrollment.keystore.ca import store_ca_key
    from enrollment.models import Certificate, CertificateAuthority, CertificateRequest, Employee
    from enrollment.pki import ca as pki_ca
    from enrollment.pki.keys import generate_private_key
    from enrollment.services.authorities import organization_from_settings

    key = generate_private_key(key_type)
    certificate = pki_ca.self_signed_issuing_certificate(
        key=key, subject=pki_ca.ca_subject(common_name="Bench S/MIME CA", organization=organization_from_settings())
    )
    ca = CertificateAuthority.objects.create(
        slug="bench-ca",
        common_name="Bench S/MIME CA",
        certificate_der=certificate.public_bytes(Encoding.DER),
        key_reference=store_ca_key(slug="bench-ca", key=key),
        is_issuing=True,
        base_url="http://pki.example.org",
    )
    user = get_user_model().objects.create_user(username="bench", email="bench@example.org")
    employee = Employee.objects.create(user=user, mail="bench@example.org", given_name="Bench", surname="Mark")
    now = timezone.now().replace(microsecond=0)
    batch = 5000
    for start in range(0, count, batch):
        size = min(batch, count - start)
        requests = CertificateRequest.objects.bulk_create(
            [
                CertificateRequest(employee=employee, submitted_by=user, state=CertificateRequest.State.ISSUED)
                for _ in range(size)
            ]
        )
        if any(r.pk is None for r in requests):  # a backend without RETURNING
            requests = list(CertificateRequest.objects.order_by("-pk")[:size])[::-1]
        Certificate.objects.bulk_create(
            [
                Certificate(
                    request=request,
                    employee=employee,
                    issuer=ca,
                    serial=format(0x4000_0000_0000 + start + i, "x"),
                    subject="CN=bench@example.org",
                    mailbox="bench@example.org",
                    key_type="ec-p256",
                    certificate_type="mailbox-strict",
                    not_before=now - timedelta(days=30),
                    not_after=now + timedelta(days=335),
                    fingerprint_sha256=format(start + i, "064x"),
                    der=b"\x30\x00",  # placeholder: neither CRL path reads it
                    status=Certificate.Status.REVOKED,
                    revoked_at=now - timedelta(seconds=start + i),
                    revocation_reason=REASONS[(start + i) % len(REASONS)],
                )
                for i, request in enumerate(requests)
            ]
        )
    return ca, certificate


def naive_crl(ca) -> bytes:
    """The baseline: one Certificate ORM object per row, then the same CRL."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from django.conf import settings
    from django.utils import timezone

    from enrollment.keystore.ca import key_backend_for
    from enrollment.models import Certificate
    from enrollment.pki import crl as pki_crl

    entries = []
    for certificate in Certificate.objects.filter(issuer=ca, status=Certificate.Status.REVOKED):
        reason = certificate.revocation_reason
        entries.append(
            pki_crl.RevokedEntry(
                serial_number=int(certificate.serial, 16),
                revocation_date=certificate.revoked_at,
                reason=x509.ReasonFlags[reason] if reason and reason != "unspecified" else None,
            )
        )
    now = timezone.now().replace(microsecond=0)
    builder = pki_crl.crl_builder(
        issuer_certificate=ca.certificate,
        entries=entries,
        crl_number=ca.crl_number + 1,
        this_update=now,
        next_update=now + timedelta(days=settings.PORTAL_CRL_VALIDITY_DAYS),
    )
    return key_backend_for(ca).sign_crl(builder).public_bytes(Encoding.DER)


def streamed_crl(ca) -> bytes:
    from enrollment.revocation.services import crl_generate

    return crl_generate(ca=ca)


def measure(function, ca) -> tuple[float, int, bytes]:
    """(seconds without tracing, peak traced bytes in a second run, the CRL)."""
    gc.collect()
    started = time.perf_counter()
    crl = function(ca)
    seconds = time.perf_counter() - started
    del crl
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    crl = function(ca)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak, crl


def ocsp_rate(ca, certificate, count: int, requests: int) -> tuple[float, int]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509 import ocsp

    from enrollment.pki.ocsp import issuer_hashes
    from enrollment.revocation.ocsp import ocsp_respond

    name_hash, key_hash = issuer_hashes(certificate, hashes.SHA1())
    ders = [
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(name_hash, key_hash, 0x4000_0000_0000 + (i * 7919) % count, hashes.SHA1())
        .build()
        .public_bytes(Encoding.DER)
        for i in range(requests)
    ]
    first = ocsp.load_der_ocsp_response(ocsp_respond(ca_slug=ca.slug, request_der=ders[0]))  # warm-up (responder)
    assert first.certificate_status is ocsp.OCSPCertStatus.REVOKED, first.certificate_status
    started = time.perf_counter()
    for der in ders:
        ocsp_respond(ca_slug=ca.slug, request_der=der)
    seconds = time.perf_counter() - started
    return (requests / seconds if seconds else float("inf")), len(ders)


def main(argv=None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    try:
        setup_django(workdir)
        from django.conf import settings
        from django.db import connection

        settings.PORTAL_OCSP_SIGNER = args.ocsp_signer
        connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        try:
            return run(args, connection.vendor)
        finally:
            connection.creation.destroy_test_db(settings.DATABASES["default"]["NAME"], verbosity=0)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args, vendor: str) -> int:
    from cryptography import x509
    from django.db import connection, transaction

    if vendor == "sqlite":
        with connection.cursor() as cursor:  # a throwaway file: no need to survive a crash
            cursor.execute("PRAGMA synchronous = OFF")
    started = time.perf_counter()
    with transaction.atomic():
        ca, certificate = create_rows(args.count, args.key_type)
    setup_seconds = time.perf_counter() - started

    naive_seconds, naive_peak, naive = measure(naive_crl, ca)
    streamed_seconds, streamed_peak, streamed = measure(streamed_crl, ca)
    naive_serials = {entry.serial_number for entry in x509.load_der_x509_crl(naive)}
    streamed_crl_object = x509.load_der_x509_crl(streamed)
    if naive_serials != {entry.serial_number for entry in streamed_crl_object} or len(naive_serials) != args.count:
        print("the two CRLs differ", file=sys.stderr)
        return 1

    mib = 1024 * 1024
    rows = [
        ("baseline: ORM objects one by one", naive_seconds, naive_peak),
        ("crl_generate: streamed tuples", streamed_seconds, streamed_peak),
    ]
    print(
        f"CRL for {args.count:,} revoked certificates ({vendor}, CA key {args.key_type}, CRL {len(streamed):,} bytes)"
    )
    print(f"(setup: {args.count:,} rows inserted with bulk_create in {setup_seconds:.1f} s)")
    print()
    print(f"{'approach':<36} {'time (s)':>9} {'peak memory (MiB)':>18} {'time ratio':>11} {'memory ratio':>13}")
    for label, seconds, peak in rows:
        print(
            f"{label:<36} {seconds:>9.2f} {peak / mib:>18.1f} "
            f"{seconds / naive_seconds:>11.2f} {peak / naive_peak:>13.2f}"
        )
    print()
    if args.ocsp_requests:
        rate, requests = ocsp_rate(ca, certificate, args.count, args.ocsp_requests)
        print(
            f"OCSP: ocsp_respond answered {requests:,} requests at {rate:,.0f} responses/s "
            f"({args.ocsp_signer} signer, {args.key_type})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
