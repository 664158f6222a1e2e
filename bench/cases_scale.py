"""Benchmarks of scale: admin changelists as tables grow (bench/cases_ldap.py: the directory).

Changelists: the time of one GET of the admin changelist (Django's test client, as the role that
reads it) at a large table divided by the same at a small one. The table only grows, so the two
sizes cannot be interleaved: the small size's rounds come first, then the rows are added and the
large size's rounds follow. In the Result, "raw /s" is pages per second at the large size and
"portal /s" at the small one, so that `ratio` (portal / raw) is time(large) / time(small).
Query counts are asserted in tests/bench/test_changelist_queries.py; here only time. After the
audit events are added, the periodic chain check runs (as beat runs it): each view then verifies
only what was appended since (audit/verification.py), not the fill.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

from .harness import Result
from .world import MAILBOX_DOMAIN, World

CHUNK = 5000  # rows per bulk_create / audit append: one INSERT each, bounded memory


# --- rows, fast ----------------------------------------------------------------------------


def _now():
    from django.utils import timezone

    return timezone.now().replace(microsecond=0)


def employees_create(*, count: int, prefix: str) -> list:
    """`count` users with an Employee each, bulk-created (no password: they never log in)."""
    from django.contrib.auth import get_user_model

    from enrollment.models import Employee

    User = get_user_model()
    employees = []
    for offset in range(0, count, CHUNK):
        names = [f"{prefix}{number}" for number in range(offset, min(count, offset + CHUNK))]
        User.objects.bulk_create(
            [User(username=name, email=f"{name}@{MAILBOX_DOMAIN}", password="!") for name in names]
        )
        users = User.objects.filter(username__in=names).order_by("pk")  # ids back on every backend
        employees += Employee.objects.bulk_create(
            [
                Employee(
                    user=user,
                    mail=user.email,
                    given_name="Scale",
                    surname=f"Person {user.username}",
                    department=f"Department {index % 7}",
                )
                for index, user in enumerate(users)
            ]
        )
    if employees and employees[0].pk is None:  # a backend without RETURNING
        employees = list(Employee.objects.filter(mail__startswith=prefix).order_by("pk"))
    return employees


def requests_and_certificates_create(*, ca, employees: list, deciders: list, prefix: str, der: bytes = b"\x30\x00"):
    """One request per employee (states and deciders varied) and a certificate for each issued one.

    Placeholder DER unless `der` is given: the changelists never parse it. Returns the certificates.
    """
    from enrollment.models import Certificate, CertificateRequest

    states = ["pending", "issued", "issued", "rejected", "pending", "issued"]
    now = _now()
    certificates = []
    for offset in range(0, len(employees), CHUNK):
        chunk = employees[offset : offset + CHUNK]
        requests = CertificateRequest.objects.bulk_create(
            [
                CertificateRequest(
                    employee=employee,
                    submitted_by_id=employee.user_id,
                    key_type="ec-p256",
                    certificate_type="mailbox-strict",
                    state=states[(offset + i) % len(states)],
                    decided_by=deciders[(offset + i) % len(deciders)] if (offset + i) % len(states) else None,
                    decided_at=now if (offset + i) % len(states) else None,
                )
                for i, employee in enumerate(chunk)
            ]
        )
        if requests and requests[0].pk is None:
            requests = list(CertificateRequest.objects.filter(employee__in=chunk).order_by("pk"))
        rows = []
        for request in requests:
            if request.state != "issued":
                continue
            number = request.pk
            revoked = number % 10 == 0
            rows.append(
                Certificate(
                    request=request,
                    employee_id=request.employee_id,
                    issuer=ca,
                    serial=format((0x5CA1E << 80) + number, "x"),
                    subject=f"CN={prefix}{number}",
                    mailbox=f"{prefix}{number}@{MAILBOX_DOMAIN}",
                    key_type="ec-p256",
                    certificate_type="mailbox-strict",
                    not_before=now - timedelta(days=number % 300, seconds=number),
                    not_after=now + timedelta(days=365 - number % 300),
                    fingerprint_sha256=format((0x5CA1E << 200) + number, "064x"),
                    der=der,
                    status="revoked" if revoked else "valid",
                    revoked_at=now if revoked else None,
                    revocation_reason="superseded" if revoked else "",
                    revoked_by=deciders[number % len(deciders)] if revoked else None,
                )
            )
        certificates += Certificate.objects.bulk_create(rows)
    return certificates


def audit_events_fill(*, total: int, actors: list, objects: list) -> int:
    """Append events through the audit service until the log holds `total`; returns how many were added.

    `audit_appends_at_end` links and HMACs a chunk under one lock and inserts it with one
    statement: the chain stays valid (the run verifies it whole afterwards).
    """
    from django.db import transaction

    from audit.events import AuditAction
    from audit.models import AuditEvent
    from audit.services import audit_appends_at_end, audit_record

    missing = total - AuditEvent.objects.count()
    actions = [AuditAction.CRL_GENERATED, AuditAction.DIRECTORY_PUBLISHED, AuditAction.DIRECTORY_PUBLISH_FAILED]
    for offset in range(0, max(0, missing), CHUNK):
        with transaction.atomic(), audit_appends_at_end():
            for number in range(offset, min(missing, offset + CHUNK)):
                audit_record(
                    action=actions[number % len(actions)],
                    actor=actors[number % len(actors)],
                    obj=objects[number % len(objects)],
                    details={"bench": number},
                )
    return max(0, missing)


# --- changelists as tables grow ------------------------------------------------------------


def _page_seconds(client, url: str, *, rounds: int) -> float:
    """Median seconds of one GET (after one warm-up GET)."""

    def get() -> float:
        started = time.perf_counter()
        response = client.get(url)
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}")
        return seconds

    get()
    return statistics.median(get() for _ in range(rounds))


def _growth(*, name: str, url: str, client, small: int, large: int, grow, rounds: int, what: str) -> Result:
    """Time the page, grow the table from `small` to `large` rows with `grow(rows)`, time it again."""
    grow(small)
    small_seconds = _page_seconds(client, url, rounds=rounds)
    started = time.perf_counter()
    grow(large)
    fill_seconds = time.perf_counter() - started
    large_seconds = _page_seconds(client, url, rounds=rounds)
    result = Result(
        name=name,
        work=f"GET {url}: {large:,} {what} ('raw' column) vs {small:,} ('portal'); ratio = time large / small",
        raw_per_second=1 / large_seconds,
        portal_per_second=1 / small_seconds,
        rounds=rounds,
        operations=1,
    )
    result.notes.update(
        small_rows=small, large_rows=large, small_seconds=round(small_seconds, 4),
        large_seconds=round(large_seconds, 4), fill_seconds=round(fill_seconds, 1),
    )  # fmt: skip
    return result


def _logged_in(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def _role_user(username: str, group: str):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user, _ = get_user_model().objects.get_or_create(
        username=username, defaults={"email": f"{username}@{MAILBOX_DOMAIN}", "is_staff": True}
    )
    user.groups.set(Group.objects.filter(name=group))
    return user


def changelist_scaling(
    world: World, *, quick: bool, rounds: int, audit_sizes: tuple[int, int] | None = None,
    row_sizes: tuple[int, int] | None = None,
) -> list[Result]:
    """The audit changelist at 1,000,000 events vs 10,000 and the certificate and request
    changelists at 100,000 rows vs 1,000 (quick: 3,000 vs 300 and 1,000 vs 100).

    `audit_sizes` and `row_sizes` (small, large) override those, to iterate on fewer rows."""
    from enrollment.models import Certificate, CertificateRequest
    from enrollment.roles import AUDITORS

    auditor = _role_user("auditor", AUDITORS)  # a demo account name: no second factor in development
    approver = world.approver
    deciders = [approver, world.admin, auditor]
    audit_small, audit_large = audit_sizes or ((300, 3_000) if quick else (10_000, 1_000_000))
    rows_small, rows_large = row_sizes or ((100, 1_000) if quick else (1_000, 100_000))

    def grow_requests(total: int) -> None:
        missing = total - CertificateRequest.objects.filter(employee__mail__startswith="scale").count()
        if missing > 0:
            prefix = f"scale{CertificateRequest.objects.count()}-"
            employees = employees_create(count=missing, prefix=prefix)
            requests_and_certificates_create(ca=world.ca, employees=employees, deciders=deciders, prefix=prefix)

    def grow_certificates(total: int) -> None:
        while Certificate.objects.filter(mailbox__startswith="scale").count() < total:
            missing = total - Certificate.objects.filter(mailbox__startswith="scale").count()
            grow_requests(CertificateRequest.objects.filter(employee__mail__startswith="scale").count() + missing * 2)

    def grow_audit(total: int) -> None:
        from audit.verification import audit_chain_advance

        audit_events_fill(total=total, actors=[*deciders, None], objects=[world.ca, world.agent, approver])
        audit_chain_advance(limit=None)  # beat's audit.chain_verify, as in production: the page reads its point

    results = [
        _growth(
            name="request_changelist_100k_vs_1k_time_ratio", url="/admin/enrollment/certificaterequest/",
            client=_logged_in(approver), small=rows_small, large=rows_large, grow=grow_requests, rounds=rounds,
            what="requests (the approval queue)",
        ),
        _growth(
            name="certificate_changelist_100k_vs_1k_time_ratio", url="/admin/enrollment/certificate/",
            client=_logged_in(approver), small=rows_small, large=rows_large, grow=grow_certificates, rounds=rounds,
            what="certificates",
        ),
        _growth(
            name="audit_changelist_1m_vs_10k_time_ratio", url="/admin/audit/auditevent/",
            client=_logged_in(auditor), small=audit_small, large=audit_large, grow=grow_audit, rounds=rounds,
            what="audit events",
        ),
    ]  # fmt: skip
    return results
