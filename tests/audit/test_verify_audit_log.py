"""`verify_audit_log` catches rows edited, deleted or inserted behind the portal's back.

(Deleting the newest events leaves a valid shorter chain: test_audit_anchor.py covers that.)
"""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.chain import event_hash
from audit.models import AuditEvent
from audit.services import audit_record


def tamper(change):
    """Rows changed behind the portal's back (on PostgreSQL, past the append-only triggers if installed).

    ALTER TABLE needs no pending (deferred foreign key) trigger events, hence IMMEDIATE around it.
    """
    if connection.vendor != "postgresql":
        return change()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE escrow_auditevent DISABLE TRIGGER USER")
        result = change()
        cursor.execute("ALTER TABLE escrow_auditevent ENABLE TRIGGER USER")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    return result


def chained_fields(*, previous_hash: str, action: str, timestamp) -> dict:
    return dict(
        timestamp=timestamp, actor_id=None, actor_name="", action=action, object_type="", object_id="",
        source_ip=None, details={}, previous_hash=previous_hash,
    )


@pytest.fixture
def chain(db):
    return [audit_record(action="crl.generated", details={"n": i}) for i in range(5)]


def test_intact_chain_passes(chain, capsys):
    call_command("verify_audit_log")
    assert "intact: 5 events" in capsys.readouterr().out


def test_edited_event_is_named(chain):
    tamper(lambda: AuditEvent.objects.filter(pk=chain[2].pk).update(details={"n": 99}))
    with pytest.raises(CommandError, match=f"broken at event {chain[2].pk} "):
        call_command("verify_audit_log")


@pytest.mark.parametrize("field, value", [("actor_name", "mallory"), ("source_ip", "203.0.113.9"),
                                          ("timestamp", None), ("action", "test.other")])
def test_each_hashed_field_is_covered(chain, field, value):
    if field == "timestamp":
        from datetime import timedelta

        value = chain[3].timestamp - timedelta(seconds=1)
    tamper(lambda: AuditEvent.objects.filter(pk=chain[3].pk).update(**{field: value}))
    with pytest.raises(CommandError, match=f"broken at event {chain[3].pk} "):
        call_command("verify_audit_log")


def test_deleted_event_is_detected_at_its_successor(chain):
    tamper(lambda: AuditEvent.objects.filter(pk=chain[1].pk).delete())
    with pytest.raises(CommandError, match=f"broken at event {chain[2].pk} "):
        call_command("verify_audit_log")


def test_deleted_first_event_is_detected(chain):
    tamper(lambda: AuditEvent.objects.filter(pk=chain[0].pk).delete())
    with pytest.raises(CommandError, match=f"broken at event {chain[1].pk} "):
        call_command("verify_audit_log")


def test_inserted_event_is_detected(chain):
    forged = AuditEvent.objects.create(
        timestamp=chain[2].timestamp, action="test.forged", previous_hash=chain[2].hash, hash="f" * 64
    )
    with pytest.raises(CommandError, match=f"broken at event {forged.pk} "):
        call_command("verify_audit_log")


def test_event_inserted_into_a_gap_between_two_others_is_detected(chain):
    """Ids have gaps (a PostgreSQL sequence skips on rollback): a forger can slot a row into one.

    The forged row links correctly to its predecessor and hashes correctly; its successor's
    link then points past it, so the chain breaks there.
    """
    last = chain[-1]
    after_gap_fields = chained_fields(previous_hash=last.hash, action="test.after-gap", timestamp=last.timestamp)
    after_gap = AuditEvent.objects.create(id=last.pk + 10, **after_gap_fields, hash=event_hash(**after_gap_fields))
    call_command("verify_audit_log")  # a gap alone is no tampering

    forged_fields = chained_fields(previous_hash=last.hash, action="test.forged", timestamp=last.timestamp)
    AuditEvent.objects.create(id=last.pk + 5, **forged_fields, hash=event_hash(**forged_fields))
    with pytest.raises(CommandError, match=f"broken at event {after_gap.pk} "):
        call_command("verify_audit_log")


def test_rehashed_forgery_still_breaks_the_link_to_the_next_event(chain):
    victim = chain[1]
    fields = chained_fields(previous_hash=victim.previous_hash, action="test.rewritten", timestamp=victim.timestamp)
    tamper(lambda: AuditEvent.objects.filter(pk=victim.pk).update(
        action="test.rewritten", details={}, hash=event_hash(**fields)
    ))
    with pytest.raises(CommandError, match=f"broken at event {chain[2].pk} "):
        call_command("verify_audit_log")
