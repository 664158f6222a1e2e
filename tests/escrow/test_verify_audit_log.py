"""`verify_audit_log` catches rows edited, deleted or inserted behind the portal's back."""

import pytest
from django.core.management import CommandError, call_command

from escrow.audit import audit_record
from escrow.models import AuditEvent


@pytest.fixture
def chain(db):
    return [audit_record(action=f"test.event{i}", details={"n": i}) for i in range(5)]


def test_intact_chain_passes(chain, capsys):
    call_command("verify_audit_log")
    assert "intact: 5 events" in capsys.readouterr().out


def test_edited_event_is_named(chain):
    AuditEvent.objects.filter(pk=chain[2].pk).update(details={"n": 99})
    with pytest.raises(CommandError, match=f"broken at event {chain[2].pk} "):
        call_command("verify_audit_log")


def test_deleted_event_is_detected_at_its_successor(chain):
    AuditEvent.objects.filter(pk=chain[1].pk).delete()
    with pytest.raises(CommandError, match=f"broken at event {chain[2].pk} "):
        call_command("verify_audit_log")


def test_inserted_event_is_detected(chain):
    forged = AuditEvent.objects.create(
        timestamp=chain[2].timestamp, action="test.forged", previous_hash=chain[2].hash, hash="f" * 64
    )
    with pytest.raises(CommandError, match=f"broken at event {forged.pk} "):
        call_command("verify_audit_log")


def test_rehashed_forgery_still_breaks_the_link_to_the_next_event(chain):
    from escrow.audit import event_hash

    victim = chain[1]
    fields = dict(
        timestamp=victim.timestamp, actor_id=None, actor_name="", action="test.rewritten", object_type="",
        object_id="", source_ip=None, details={}, previous_hash=victim.previous_hash,
    )
    AuditEvent.objects.filter(pk=victim.pk).update(action="test.rewritten", details={}, hash=event_hash(**fields))
    with pytest.raises(CommandError, match=f"broken at event {chain[2].pk} "):
        call_command("verify_audit_log")
