"""The external sink: one JSON line per event on `portal.audit.events`, after the commit, never on rollback.

Shipped off-host (syslog), it is a copy of the chain's hashes that the database's
administrators cannot rewrite; `verify_audit_log --sink` checks the log against it.
"""

from __future__ import annotations

import json
import logging
import socket

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from test_verify_audit_log import tamper

from audit.models import AuditEvent
from audit.services import audit_record
from audit.sink import sink_line, syslog_handler

SINK = "portal.audit.events"


def sink_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == SINK]


@pytest.fixture
def sink(caplog):
    caplog.set_level(logging.INFO, logger=SINK)
    return caplog


@pytest.mark.django_db(transaction=True)
def test_one_line_per_event_after_the_commit_and_none_on_rollback(sink, approver):
    with transaction.atomic():
        first = audit_record(action="recovery.approved", actor=approver, obj=approver,
                             details={"reason": "lost laptop"})
        second = audit_record(action="crl.generated")
        assert sink_lines(sink) == []  # not before the commit
    lines = sink_lines(sink)
    assert lines == [sink_line(first), sink_line(second)]

    line = json.loads(lines[0])
    assert line == {
        "v": 1,
        "id": first.pk,
        "timestamp": first.timestamp.isoformat(timespec="microseconds"),
        "action": "recovery.approved",
        "actor": "approver",
        "object": f"auth.user:{approver.pk}",
        "previous_hash": first.previous_hash,
        "hash": first.hash,
        "key_id": first.key_id,
    }
    assert "lost laptop" not in lines[0]  # no details

    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(action="crl.generated", details={"rolled": "back"})
        raise RuntimeError("the business transaction fails")
    assert len(sink_lines(sink)) == 2
    audit_record(action="ca.created")  # alone: its own transaction
    assert len(sink_lines(sink)) == 3
    assert AuditEvent.objects.count() == 3


def test_no_line_for_an_event_rolled_back_to_a_savepoint(db, sink, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        kept = audit_record(action="crl.generated")
        try:
            with transaction.atomic():
                audit_record(action="crl.generated", details={"gone": True})
                raise ValueError
        except ValueError:
            pass
    assert [json.loads(line)["id"] for line in sink_lines(sink)] == [kept.pk]


def test_the_sink_loggers_log_at_info_whatever_the_root_level(settings):
    loggers = settings.LOGGING["loggers"]
    assert loggers["portal.audit.events"]["level"] == "INFO"
    assert loggers["portal.audit.anchor"]["level"] == "INFO"


def test_verify_against_the_collected_sink_catches_a_deleted_tail(db, sink, tmp_path,
                                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        events = [audit_record(action="crl.generated", details={"n": index}) for index in range(4)]
    collected = tmp_path / "collector.log"
    # As rsyslog stores them: a prefix, then the line; other programs' lines in between.
    collected.write_text("".join(
        f"2026-12-01T10:00:0{index}+00:00 portal smime-portal-audit: {line}\nsome other program: hello\n"
        for index, line in enumerate(sink_lines(sink))
    ))
    out = __import__("io").StringIO()
    call_command("verify_audit_log", "--sink", str(collected), stdout=out)
    assert "4 sink lines match" in out.getvalue()

    tamper(lambda: AuditEvent.objects.filter(pk=events[-1].pk).delete())
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit_log", "--sink", str(collected))
    assert f"sink line 7: event #{events[-1].pk} (crl.generated) is missing from the log" in str(failure.value)


def test_syslog_handler_sends_the_line_to_a_remote_collector(db, sink):
    collector = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    collector.bind(("127.0.0.1", 0))
    collector.settimeout(5)
    handler = syslog_handler(address=f"udp://127.0.0.1:{collector.getsockname()[1]}")
    logger = logging.getLogger(SINK)
    logger.addHandler(handler)
    try:
        event = audit_record(action="crl.generated")
        logging.getLogger(SINK).info("%s", sink_line(event))
        received = collector.recv(65536).decode()
    finally:
        logger.removeHandler(handler)
        handler.close()
        collector.close()
    assert received.startswith("<134>smime-portal-audit: {")  # local0.info
    assert json.loads(received.split(": ", 1)[1].rstrip("\x00"))["hash"] == event.hash


@pytest.mark.parametrize("address", ["udp://nohost", "tcp://:514", "udp://host:port"])
def test_syslog_handler_refuses_a_malformed_address(address):
    with pytest.raises(ValueError, match="is not udp://host:port"):
        syslog_handler(address=address)
