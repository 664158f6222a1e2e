"""The audit changelist's filters, drill-down and count read no more than a page's worth of the log
(audit/admin_filters.py): declared choices, periods between the oldest and the newest event, a capped count."""

import pytest
from test_audit_api import append_event, utc

CHANGELIST = "/admin/audit/auditevent/"
pytestmark = pytest.mark.django_db


@pytest.fixture
def spread(db):
    return [
        append_event(timestamp=utc(2024, 3, 1, 9), action="request.created"),
        append_event(timestamp=utc(2026, 10, 30, 9), action="request.created"),
        append_event(timestamp=utc(2026, 11, 2, 9), action="crl.generated"),
    ]


def _page(client, auditor, **query) -> str:
    client.force_login(auditor)
    response = client.get(CHANGELIST, query)
    assert response.status_code == 200
    return response.content.decode()


def test_the_event_type_filter_offers_every_declared_type(client, auditor, spread):
    page = _page(client, auditor)
    assert "?action=kra.imported" in page  # declared, no such event in the log
    assert "?object_type=escrow.escrowrecord" in page


def test_the_actor_filter_lists_the_chosen_actor_only(client, auditor, bob, spread):
    page = _page(client, auditor, actor__id__exact=bob.pk)
    assert f"actor__id__exact={bob.pk}" in page and "actor__isnull=True" in page


def test_the_date_drill_down_offers_each_period_between_the_oldest_and_newest_event(client, auditor, spread):
    page = _page(client, auditor)
    assert all(f"?timestamp__year={year}" in page for year in (2024, 2025, 2026))
    months = _page(client, auditor, timestamp__year=2024).replace("&amp;", "&")
    assert "?timestamp__month=3&timestamp__year=2024" in months and "timestamp__month=2&" not in months
    days = _page(client, auditor, timestamp__year=2024, timestamp__month=3).replace("&amp;", "&")
    assert "timestamp__day=31&" in days and "timestamp__day=1&" in days


def test_beyond_the_cap_the_count_says_more_than(client, auditor, spread, monkeypatch):
    monkeypatch.setattr("audit.admin_filters.COUNT_CAP", 2)
    monkeypatch.setattr("audit.admin_filters.CountBoundedPaginator.count_cap", 2)
    assert "more than 2 audit events" in _page(client, auditor)
    assert "1 audit event" in _page(client, auditor, action="crl.generated")
