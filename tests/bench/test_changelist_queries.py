"""The admin changelists read a page with as many queries whatever the table holds (no N+1).

Each changelist is loaded with 5 rows of varied data (several employees, deciders, actors,
states), then with 50: the number of queries must be the same, and the page must list the
rows. Run on SQLite and, with DATABASE_URL, on PostgreSQL. The time they take as the tables
grow is the benchmark's (bench/cases_scale.py, tests/bench/test_bench_scale.py).
"""

from __future__ import annotations

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench.cases_scale import audit_events_fill, employees_create, requests_and_certificates_create

pytestmark = pytest.mark.django_db

_prefixes = itertools.count()


def _queries(client, url: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(queries), response.content.decode()


@pytest.fixture
def rows(pki, approver, auditor, pki_admin):
    """rows(kind, n): add n more rows of that kind (employees come with requests and certificates)."""

    def add(kind: str, count: int) -> None:
        prefix = f"rows{next(_prefixes)}-"
        if kind == "audit":
            audit_events_fill(
                total=_audit_count() + count, actors=[approver, auditor, pki_admin, None],
                objects=[pki["issuing"], pki["agent"], approver.employee],
            )  # fmt: skip
            return
        employees = employees_create(count=count, prefix=prefix)
        requests_and_certificates_create(
            ca=pki["issuing"], employees=employees, deciders=[approver, pki_admin, auditor], prefix=prefix
        )

    return add


def _audit_count() -> int:
    from audit.models import AuditEvent

    return AuditEvent.objects.count()


CHANGELISTS = {
    # name: (URL, who reads it, rows to add, what each row of the page shows)
    "audit events": ("/admin/audit/auditevent/", "auditor", "audit", 'class="field-action"'),
    "certificates": ("/admin/enrollment/certificate/", "approver", "employees", 'class="field-serial"'),
    "approval queue": ("/admin/enrollment/certificaterequest/", "approver", "employees", 'class="field-state"'),
    "all requests": (
        "/admin/enrollment/certificaterequest/?state__exact=all",
        "approver",
        "employees",
        'class="field-state"',
    ),
    "employees": ("/admin/enrollment/employee/", "pki_admin", "employees", 'class="field-'),
}


@pytest.mark.parametrize("name", CHANGELISTS)
def test_a_changelist_page_costs_as_many_queries_with_50_rows_as_with_5(name, request, client, rows):
    url, reader, kind, row_marker = CHANGELISTS[name]
    client.force_login(request.getfixturevalue(reader))
    rows(kind, 5)
    client.get(url)  # caches (content types, sessions) warm, as on any later view
    few, page = _queries(client, url)
    shown_few = page.count("<tr")
    rows(kind, 45)
    # The audit page's first view after new events verifies them and stores how far (tests/audit/
    # test_audit_chain_state.py counts those queries); both figures here are of a view after one.
    client.get(url)
    many, page = _queries(client, url)
    shown_many = page.count("<tr")
    assert row_marker in page
    assert shown_many > shown_few, "the page should list the added rows"
    assert many == few, f"{name}: {few} queries with 5 rows, {many} with 50"


@pytest.mark.parametrize("name", ["audit events", "approval queue"])
def test_a_changelist_offers_its_filters_without_reading_every_row(name, request, client, rows):
    """No DISTINCT over the table (filter choices, date hierarchy) and no COUNT(*) of every row."""
    url, reader, kind, _ = CHANGELISTS[name]
    client.force_login(request.getfixturevalue(reader))
    rows(kind, 5)
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    table = '"escrow_auditevent"' if kind == "audit" else '"enrollment_certificaterequest"'
    reads = [query["sql"] for query in queries.captured_queries if table in query["sql"]]
    assert reads and not [sql for sql in reads if "DISTINCT" in sql.upper()]
    unbounded_counts = [sql for sql in reads if "COUNT(" in sql.upper() and "WHERE" not in sql and "LIMIT" not in sql]
    assert not unbounded_counts


def test_the_queue_counts_its_pending_requests_once(client, approver, rows):
    client.force_login(approver)
    rows("employees", 6)
    client.get(CHANGELIST_QUEUE)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST_QUEUE)
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(*)" in q["sql"] and "enrollment_certificaterequest" in q["sql"]]
    assert len(counts) == 1, counts  # the paginator's, which the title reuses
    assert response.context["title"] == f"Approval queue: {response.context['cl'].result_count} requests waiting for approval"


CHANGELIST_QUEUE = CHANGELISTS["approval queue"][0]
