"""The chain's verified point (audit/verification.py): the admin hashes only events newer than it,
the job takes it to the head, and the full check still finds an OLD event edited after it was verified."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from test_audit_api import append_event, utc
from test_verify_audit_log import tamper

from audit import chain
from audit.models import AuditChainState, AuditEvent
from audit.services import audit_record
from audit.verification import audit_chain_advance, audit_chain_verify_full

CHANGELIST = "/admin/audit/auditevent/"
pytestmark = pytest.mark.django_db


def _record(count: int) -> list[AuditEvent]:
    return [audit_record(action="crl.generated", details={"n": n}) for n in range(count)]


@pytest.fixture
def hashed(monkeypatch):
    """The events whose hash the chain check recomputes, by id (both rules: keyed and unkeyed)."""
    seen: list[int] = []
    real_check = chain._ChainCheck.feed

    def feed(self, event):
        seen.append(event.pk)
        return real_check(self, event)

    monkeypatch.setattr(chain._ChainCheck, "feed", feed)
    return seen


def _status(client) -> str:
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    start = html.index('id="audit-chain-status"')
    return html[start : html.index("</p>", start)]


def test_a_view_hashes_only_the_events_after_the_stored_point(client, auditor, hashed):
    client.force_login(auditor)
    old = _record(30)
    assert "intact through event" in _status(client)
    assert AuditChainState.objects.get().verified_through_id == old[-1].pk
    hashed.clear()
    new = _record(3)
    status = _status(client)
    assert hashed == [event.pk for event in new]  # not one of the 30 verified before
    assert f"intact through event #{new[-1].pk}" in status
    hashed.clear()
    _status(client)
    assert hashed == []


def test_a_view_verifies_at_most_its_limit_and_says_how_many_wait(client, auditor, hashed, monkeypatch):
    monkeypatch.setattr("audit.admin.AUDIT_PAGE_VERIFY_LIMIT", 10)
    client.force_login(auditor)
    _status(client)
    events = _record(25)
    hashed.clear()
    with CaptureQueriesContext(connection) as queries:
        status = _status(client)
    assert len(hashed) == 10
    assert f"intact through event #{events[9].pk}" in status and "15 newer events not yet checked" in status
    # What the view reads and writes does not grow with the events waiting (3 of them, or 15).
    _status(client)
    _record(3)
    with CaptureQueriesContext(connection) as fewer:
        _status(client)
    assert len(fewer) == len(queries)
    assert not [q for q in queries.captured_queries if q["sql"].startswith('UPDATE "escrow_auditevent"')]


def test_the_job_verifies_up_to_the_head(db, hashed):
    from audit.tasks import audit_chain_verify

    events = _record(12)
    audit_chain_verify()
    state = AuditChainState.objects.get()
    assert (state.verified_through_id, state.verified_through_hash) == (events[-1].pk, events[-1].hash)
    assert state.broken_id is None and state.full_check_at is None


def test_an_old_event_edited_after_it_was_verified_is_caught_by_the_full_check(client, auditor, hashed):
    client.force_login(auditor)
    events = _record(8)
    assert "no full re-verification yet" in _status(client)
    old = events[2]
    tamper(lambda: AuditEvent.objects.filter(pk=old.pk).update(details={"n": "forged"}))
    assert "intact through" in _status(client)  # before the point: the page does not re-hash it

    from audit.tasks import audit_chain_verify_full_task

    audit_chain_verify_full_task()
    status = _status(client)
    assert 'class="errornote"' in status and f"broken at #{old.pk}" in status
    assert "last full re-verification at" in status and "BROKEN" in status
    state = AuditChainState.objects.get()
    assert (state.broken_id, state.verified_through_id, state.full_check_intact) == (old.pk, events[1].pk, False)
    hashed.clear()
    _record(2)
    _status(client)
    assert hashed == []  # nothing after a break is verified; it stays on the page

    # verify_audit_log is a full check too: it fails, and stores its verdict.
    tamper(lambda: AuditEvent.objects.filter(pk=old.pk).update(details={"n": 2}))  # restored as it was
    call_command("verify_audit_log")
    assert "intact through event" in _status(client)
    assert AuditChainState.objects.get().full_check_intact is True
    tamper(lambda: AuditEvent.objects.filter(pk=old.pk).update(actor_name="mallory"))
    with pytest.raises(CommandError, match=f"broken at event {old.pk}"):
        call_command("verify_audit_log")
    assert f"broken at #{old.pk}" in _status(client)


def test_the_verified_event_deleted_or_edited_is_a_break(client, auditor):
    client.force_login(auditor)
    events = _record(4)
    _status(client)
    tamper(lambda: AuditEvent.objects.filter(pk=events[-1].pk).delete())
    status = _status(client)
    assert f"broken at #{events[-1].pk}" in status and "gone or has another hash" in status


def test_an_event_forged_after_the_point_is_caught_by_the_next_view(client, auditor):
    client.force_login(auditor)
    _record(3)
    _status(client)
    forged = append_event(timestamp=utc(2026, 11, 5), action="crl.generated")
    tamper(lambda: AuditEvent.objects.filter(pk=forged.pk).update(object_id="99"))
    assert f"broken at #{forged.pk}" in _status(client)


def test_the_full_check_never_moves_the_point_back_behind_a_later_one(db):
    _record(3)
    result = audit_chain_verify_full()
    newer = _record(2)
    audit_chain_advance(limit=None)
    from audit.verification import audit_chain_record_full_check

    audit_chain_record_full_check(result=result)  # a full check that read before the two newer events
    assert AuditChainState.objects.get().verified_through_id == newer[-1].pk


def test_the_beat_schedule_runs_both_checks(settings):
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["audit-chain-verify"]["task"] == "audit.chain_verify"
    assert schedule["audit-chain-verify-full"] == {"task": "audit.chain_verify_full", "schedule": 86400.0}
