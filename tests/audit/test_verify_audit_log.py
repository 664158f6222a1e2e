"""`verify_audit_log` catches rows edited, deleted or inserted behind the portal's back.

The chain is keyed (HMAC under PORTAL_AUDIT_CHAIN_KEY, not in the database): whoever can
only write to the database cannot append an event that verifies. (Deleting the newest
events leaves a valid shorter chain: test_audit_anchor.py covers that.)
"""

import json

import pytest
from audit_testing import keyed_event, keyed_hash, unkeyed_hash
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from audit.chain import event_hash
from audit.keys import chain_keyring
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
    after_gap = AuditEvent.objects.create(
        id=last.pk + 10, **after_gap_fields, key_id=chain_keyring().current_id, hash=keyed_hash(**after_gap_fields)
    )
    call_command("verify_audit_log")  # a gap alone is no tampering

    # Even someone who has the chain key breaks the link of the event after the gap.
    forged_fields = chained_fields(previous_hash=last.hash, action="test.forged", timestamp=last.timestamp)
    AuditEvent.objects.create(
        id=last.pk + 5, **forged_fields, key_id=chain_keyring().current_id, hash=keyed_hash(**forged_fields)
    )
    with pytest.raises(CommandError, match=f"broken at event {after_gap.pk} "):
        call_command("verify_audit_log")


def test_rehashed_forgery_still_breaks_the_link_to_the_next_event(chain):
    """Re-hashed with the chain key itself (an insider who has it): the next event's link breaks."""
    victim = chain[1]
    fields = chained_fields(previous_hash=victim.previous_hash, action="test.rewritten", timestamp=victim.timestamp)
    tamper(lambda: AuditEvent.objects.filter(pk=victim.pk).update(
        action="test.rewritten", details={}, hash=keyed_hash(**fields)
    ))
    with pytest.raises(CommandError, match=f"broken at event {chain[2].pk} "):
        call_command("verify_audit_log")


@pytest.mark.parametrize("key_id", ["", "current"])
def test_event_rewritten_without_the_key_is_named_itself(chain, key_id):
    """Re-hashed with what a database administrator can compute (SHA-256): the event itself is named."""
    victim = chain[1]
    fields = chained_fields(previous_hash=victim.previous_hash, action="test.rewritten", timestamp=victim.timestamp)
    key_id = chain_keyring().current_id if key_id == "current" else ""
    tamper(lambda: AuditEvent.objects.filter(pk=victim.pk).update(
        action="test.rewritten", details={}, key_id=key_id, hash=unkeyed_hash(**fields)
    ))
    with pytest.raises(CommandError, match=f"broken at event {victim.pk} "):
        call_command("verify_audit_log")


def test_changing_an_events_key_id_is_detected(chain):
    tamper(lambda: AuditEvent.objects.filter(pk=chain[2].pk).update(key_id=""))
    with pytest.raises(CommandError, match=f"broken at event {chain[2].pk} .*unkeyed hash"):
        call_command("verify_audit_log")


# --- Appended forgeries: a row inserted with the portal's database credentials ---------------


def insert_raw(**values) -> int:
    """INSERT by plain SQL, as someone with the portal's database credentials (INSERT only) would."""
    columns = [field for field in AuditEvent._meta.concrete_fields if not field.primary_key]
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    names = ", ".join(connection.ops.quote_name(field.column) for field in columns)
    params = [
        json.dumps(values["details"]) if field.attname == "details" else values.get(field.attname, "")
        for field in columns
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})", params)
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()


@pytest.mark.parametrize("key_id", ["", "current"])
def test_forged_appended_event_with_a_valid_unkeyed_hash_fails(chain, key_id):
    """A second recovery approval, appended by raw SQL with a correct plain-SHA-256 hash: caught.

    Before the chain was keyed this verified: the hash was all anyone needed to compute."""
    head = chain[-1]
    fields = dict(
        timestamp=timezone.now().replace(microsecond=123456), actor_id=None, actor_name="approver2",
        action="recovery.approved", object_type="escrow.recoveryrequest", object_id="1", source_ip="192.0.2.66",
        details={"approvals": 2}, previous_hash=head.hash,
    )
    forged_hash = unkeyed_hash(**fields)
    key_id = chain_keyring().current_id if key_id == "current" else ""
    forged_id = insert_raw(**fields, hash=forged_hash, key_id=key_id)

    forged = AuditEvent.objects.get(pk=forged_id)
    stored = {name: getattr(forged, name) for name in fields}
    assert event_hash(**stored) == forged.hash  # a valid link and hash under the old, unkeyed rule
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit_log")
    message = str(failure.value)
    assert f"broken at event {forged_id} " in message and "recovery.approved" in message
    assert "forgery" in message and "\n" not in message  # one readable line


def test_a_whole_unkeyed_chain_rebuilt_from_nothing_fails(db):
    """The table emptied and refilled with events that chain under the unkeyed rule: nothing seals them."""
    first = dict(chained_fields(previous_hash="0" * 64, action="ca.created", timestamp=timezone.now()))
    first_id = insert_raw(**first, hash=unkeyed_hash(**first))
    second = dict(chained_fields(
        previous_hash=AuditEvent.objects.get(pk=first_id).hash, action="crl.generated", timestamp=timezone.now()
    ))
    insert_raw(**second, hash=unkeyed_hash(**second))
    with pytest.raises(CommandError, match=f"broken at event {first_id} .*no keyed audit.chain_keyed"):
        call_command("verify_audit_log")


def test_emptied_log_fails_while_certificates_exist(issued):
    """The owner (past the triggers) deletes every event: the certificates still show there were some."""
    call_command("verify_audit_log")
    tamper(lambda: AuditEvent.objects.all().delete())
    assert not AuditEvent.objects.exists()
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit_log")
    message = str(failure.value)
    assert message.startswith("audit log is empty, but ") and "1 enrollment.certificate" in message
    assert "enrollment.certificateauthority" in message and "\n" not in message


def test_an_empty_log_of_a_new_installation_verifies(db, capsys):
    call_command("verify_audit_log")
    assert "intact: 0 events" in capsys.readouterr().out


def test_keyed_event_helper_matches_audit_record(db):
    """The tests' keyed_event hashes exactly as audit_record does."""
    recorded = audit_record(action="crl.generated", details={"n": 1})
    fields = chained_fields(previous_hash=recorded.hash, action="crl.generated", timestamp=timezone.now())
    keyed_event(**fields)
    call_command("verify_audit_log")
