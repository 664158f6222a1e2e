"""Anchors catch what the hash chain cannot: deleting the newest events.

`audit_checkpoint` writes the head (last id, hash, count) as an HMAC-signed line to an
append-only file and the `portal.audit.anchor` logger; `verify_audit_log --anchors`
checks every anchor still holds.
"""

import json
import logging

import pytest
from audit_testing import keyed_hash
from django.core.management import CommandError, call_command
from test_verify_audit_log import tamper

from audit.chain import GENESIS_HASH
from audit.models import AuditEvent
from audit.services import audit_checkpoint, audit_record


@pytest.fixture
def anchor_file(tmp_path, settings):
    settings.PORTAL_AUDIT_ANCHOR_FILE = tmp_path / "anchors" / "audit-anchors.jsonl"
    settings.PORTAL_AUDIT_ANCHOR_KEY = "test-anchor-key-" + "k" * 32
    return settings.PORTAL_AUDIT_ANCHOR_FILE


@pytest.fixture
def chain(db):
    return [audit_record(action="crl.generated", details={"n": i}) for i in range(6)]


def verify(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("verify_audit_log", *args, stdout=out)
    return out.getvalue()


def test_checkpoint_writes_a_signed_head_to_the_file_and_the_log(chain, anchor_file, caplog, capsys):
    caplog.set_level(logging.INFO, logger="portal.audit.anchor")
    call_command("audit_checkpoint")
    assert f"Anchored event #{chain[-1].pk} (6 events)" in capsys.readouterr().out

    lines = anchor_file.read_text().splitlines()
    assert len(lines) == 1
    anchor = json.loads(lines[0])
    assert (anchor["last_id"], anchor["hash"], anchor["count"], anchor["v"]) == (chain[-1].pk, chain[-1].hash, 6, 1)
    assert len(anchor["hmac"]) == 64 and anchor["timestamp"]
    assert [r.getMessage() for r in caplog.records if r.name == "portal.audit.anchor"] == [lines[0]]
    assert "test-anchor-key" not in lines[0]

    audit_record(action="ca.created")
    call_command("audit_checkpoint")
    assert len(anchor_file.read_text().splitlines()) == 2  # appended, never rewritten
    out = verify("--anchors")
    assert "Audit log intact: 7 events, keyed from " in out
    assert f"2 anchors hold, the last anchored head verified is event #{chain[-1].pk + 1} (7 events, " in out


def test_tail_deletion_passes_the_chain_but_not_the_anchors(chain, anchor_file):
    audit_checkpoint()
    tamper(lambda: AuditEvent.objects.filter(pk__in=[chain[-2].pk, chain[-1].pk]).delete())

    # The shorter chain is still a valid chain: without anchors nothing is noticed (and it says so).
    assert "intact: 4 events" in verify() and "no anchors checked" in verify()
    with pytest.raises(CommandError) as failure:
        verify("--anchors", str(anchor_file))
    message = str(failure.value)
    assert f"event #{chain[-1].pk} is missing; the log has 4 events" in message
    assert "anchor line 1" in message and "6 events" in message


def test_tail_deletion_hidden_by_new_events_is_still_caught(chain, anchor_file):
    audit_checkpoint()
    tamper(lambda: AuditEvent.objects.filter(pk=chain[-1].pk).delete())
    for index in range(3):
        audit_record(action="crl.generated", details={"n": index})  # later events chain onto the shortened log
    assert "intact: 8 events" in verify()
    with pytest.raises(CommandError, match=f"event #{chain[-1].pk} is missing"):
        verify("--anchors")


def test_rewritten_tail_is_caught_by_the_anchored_hash(chain, anchor_file):
    audit_checkpoint()
    victim = chain[-1]
    fields = dict(
        timestamp=victim.timestamp, actor_id=None, actor_name="", action="test.innocent", object_type="",
        object_id="", source_ip=None, details={}, previous_hash=victim.previous_hash,
    )
    tamper(lambda: AuditEvent.objects.filter(pk=victim.pk).update(
        action="test.innocent", details={}, hash=keyed_hash(**fields)
    ))
    assert "intact: 6 events" in verify()  # re-hashed with the chain key (an insider): the chain alone is fooled
    with pytest.raises(CommandError, match=f"event #{victim.pk} has another hash than was anchored"):
        verify("--anchors")


def test_deleted_and_rechained_middle_is_caught_by_the_anchored_count(chain, anchor_file):
    """Delete event 2 and re-hash every later one (a thorough forger who has the chain key): the anchored
    hash and count give it away."""
    audit_checkpoint()

    def forge():
        AuditEvent.objects.filter(pk=chain[2].pk).delete()
        previous = chain[1].hash
        for event in AuditEvent.objects.filter(pk__gt=chain[2].pk).order_by("id"):
            fields = dict(
                timestamp=event.timestamp, actor_id=event.actor_id, actor_name=event.actor_name, action=event.action,
                object_type=event.object_type, object_id=event.object_id, source_ip=event.source_ip,
                details=event.details, previous_hash=previous,
            )
            previous = keyed_hash(**fields)
            AuditEvent.objects.filter(pk=event.pk).update(previous_hash=fields["previous_hash"], hash=previous)
        return previous

    tamper(forge)
    assert "intact: 5 events" in verify()
    with pytest.raises(CommandError) as failure:
        verify("--anchors")
    assert "another hash than was anchored" in str(failure.value)
    assert f"5 events up to #{chain[-1].pk}, 6 were anchored" in str(failure.value)


@pytest.mark.parametrize("forgery", ["count", "hmac", "garbage", "other-key"])
def test_forged_or_foreign_anchor_lines_fail(chain, anchor_file, settings, forgery):
    audit_checkpoint()
    line = json.loads(anchor_file.read_text())
    if forgery == "count":
        line["count"] = 3  # a forger lowering the anchored count to match a truncated log
        text = json.dumps(line)
    elif forgery == "hmac":
        line["hmac"] = "0" * 64
        text = json.dumps(line)
    elif forgery == "garbage":
        text = "not json at all"
    else:
        settings.PORTAL_AUDIT_ANCHOR_KEY = "a different key"
        text = anchor_file.read_text()
    anchor_file.write_text(text + "\n")
    with pytest.raises(CommandError, match="anchor line 1: "):
        verify("--anchors")


def test_anchor_of_an_empty_log_and_a_missing_anchor_file(db, anchor_file):
    anchor = audit_checkpoint()
    assert (anchor.last_id, anchor.hash, anchor.count) == (0, GENESIS_HASH, 0)
    out = verify("--anchors")
    assert "intact: 0 events" in out and "1 anchors hold" in out
    with pytest.raises(CommandError, match="cannot read the anchor file"):
        verify("--anchors", str(anchor_file.parent / "nope.jsonl"))


def test_anchor_file_is_readable_by_the_portal_alone(chain, anchor_file):
    audit_checkpoint()
    assert anchor_file.stat().st_mode & 0o777 == 0o600


def test_deleted_tail_is_caught_by_the_latest_anchor_in_one_line(chain, anchor_file):
    """Anchored often (PORTAL_AUDIT_CHECKPOINT_SECONDS): the tail after the older anchor is lost, the latest one says so."""
    audit_checkpoint()
    newer = [audit_record(action="recovery.approved", details={"n": index}) for index in range(2)]
    audit_checkpoint()
    assert "the last anchored head verified is event #%d (8 events" % newer[-1].pk in verify("--anchors")

    tamper(lambda: AuditEvent.objects.filter(pk__in=[event.pk for event in newer]).delete())
    with pytest.raises(CommandError) as failure:
        verify("--anchors")
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith("audit log truncated or rewritten: anchor line 2 ")
    assert f"event #{newer[-1].pk} is missing; the log has 6 events" in message
    assert "anchor line 1" not in message  # the older anchor still holds


def test_many_problems_make_one_line(chain, anchor_file):
    for _ in range(5):
        audit_record(action="crl.generated")
        audit_checkpoint()
    tamper(lambda: AuditEvent.objects.filter(pk__gt=chain[-1].pk).delete())
    with pytest.raises(CommandError) as failure:
        verify("--anchors")
    message = str(failure.value)
    assert "\n" not in message and message.count("anchor line") == 3 and message.endswith("(and 2 more problems)")


def test_checkpoints_are_scheduled_as_often_as_configured(settings):
    from django.core.checks import run_checks

    assert settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]["schedule"] == float(settings.PORTAL_AUDIT_CHECKPOINT_SECONDS)
    assert settings.PORTAL_AUDIT_CHECKPOINT_SECONDS <= 300  # more often than the hourly anchors of before
    settings.PORTAL_AUDIT_CHECKPOINT_SECONDS = 0
    assert "portal.E031" in [message.id for message in run_checks()]
