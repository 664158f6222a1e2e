"""Migrations of a database that holds audit events: the chain survives every one.

- The audit log left the escrow app (audit 0001, escrow 0004) without a change to its table:
  a database migrated before the move, with a chain of events in it and the Auditors'
  permission granted on the old content type, is migrated forward: the chain verifies, the
  events are the audit app's, and the grant follows the model.
- The chain became keyed (audit 0002): the unkeyed events stay verifiable under their old
  rule, sealed by a keyed `audit.chain_keyed` event (the switch point); new events are keyed,
  and an unkeyed event appended after the switch is a forgery.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audit.chain import GENESIS_HASH, event_hash

BEFORE_THE_MOVE = [("escrow", "0003_audit_append_only"), ("audit", None)]
BEFORE_THE_KEYED_CHAIN = [("audit", "0001_initial")]


def _migrate(targets):
    """Migrate to `targets`; the project state there (its models as they were then)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)._create_project_state(with_applied_migrations=True)


def _chain_as_main_wrote_it(apps, count: int, app_label: str = "escrow") -> list[str]:
    """Events as the code before the move (or before the key) appended them: same fields, same hash rule."""
    old_event = apps.get_model(app_label, "AuditEvent")
    previous, hashes = GENESIS_HASH, []
    for index in range(count):
        fields = {
            "timestamp": timezone.now(),
            "actor_id": None,
            "actor_name": "",
            "action": "certificate.issued",
            "object_type": "enrollment.certificate",
            "object_id": str(index),
            "source_ip": "192.0.2.1",
            "details": {"serial": f"{index:x}"},
            "previous_hash": previous,
        }
        previous = event_hash(**fields)
        old_event.objects.create(**fields, hash=previous)
        hashes.append(previous)
    return hashes


@pytest.mark.django_db(transaction=True)
def test_a_chain_written_before_the_move_verifies_after_it(capsys):
    old_apps = _migrate(BEFORE_THE_MOVE).apps
    content_types = old_apps.get_model("contenttypes", "ContentType")
    permissions = old_apps.get_model("auth", "Permission")
    groups = old_apps.get_model("auth", "Group")
    old_type, _ = content_types.objects.get_or_create(app_label="escrow", model="auditevent")
    view, _ = permissions.objects.get_or_create(
        content_type=old_type, codename="view_auditevent", defaults={"name": "Can view audit event"}
    )
    auditors = groups.objects.create(name="Auditors before the move")
    auditors.permissions.add(view)
    hashes = _chain_as_main_wrote_it(old_apps, 4)

    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    from django.contrib.auth.models import Group

    from audit.models import AuditEvent

    assert list(AuditEvent.objects.order_by("id").values_list("hash", flat=True))[:-1] == hashes
    assert AuditEvent.objects.order_by("id").last().action == "audit.chain_keyed"  # audit 0002's switch point
    call_command("verify_audit_log")
    assert "intact" in capsys.readouterr().out
    moved = Group.objects.get(name="Auditors before the move").permissions.get()
    assert (moved.content_type.app_label, moved.codename) == ("audit", "view_auditevent")


def _latest_migrations():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_an_unkeyed_chain_is_sealed_by_the_switch_and_continues_keyed(capsys, caplog):
    old_apps = _migrate(BEFORE_THE_KEYED_CHAIN).apps
    hashes = _chain_as_main_wrote_it(old_apps, 3, app_label="audit")
    caplog.set_level(logging.INFO, logger="portal.audit.events")

    _migrate(_latest_migrations())

    from audit.keys import chain_keyring
    from audit.models import AuditEvent
    from audit.services import audit_record

    events = list(AuditEvent.objects.order_by("id"))
    assert [event.hash for event in events[:3]] == hashes and {event.key_id for event in events[:3]} == {""}
    switch = events[3]
    assert (switch.action, switch.key_id, switch.previous_hash) == (
        "audit.chain_keyed", chain_keyring().current_id, hashes[-1]
    )
    assert switch.details == {
        "unkeyed_events": 3, "last_unkeyed_id": events[2].pk, "last_unkeyed_hash": hashes[-1],
        "rule": "HMAC-SHA256", "key_id": chain_keyring().current_id,
    }
    sunk = [json.loads(record.getMessage()) for record in caplog.records if record.name == "portal.audit.events"]
    assert [(line["id"], line["hash"]) for line in sunk] == [(switch.pk, switch.hash)]

    new = audit_record(action="crl.generated")
    assert new.key_id == chain_keyring().current_id and new.previous_hash == switch.hash
    call_command("verify_audit_log")
    out = capsys.readouterr().out
    assert "intact: 5 events" in out and f"keyed from #{switch.pk}" in out

    # The old rule still protects the old events ...
    from test_verify_audit_log import insert_raw, tamper

    tamper(lambda: AuditEvent.objects.filter(pk=events[1].pk).update(details={"serial": "ff"}))
    with pytest.raises(CommandError, match=f"broken at event {events[1].pk} .*hash does not match"):
        call_command("verify_audit_log")
    tamper(lambda: AuditEvent.objects.filter(pk=events[1].pk).update(details={"serial": "1"}))
    call_command("verify_audit_log")

    # ... and is no way in for new ones: an unkeyed event after the switch is a forgery.
    fields = {
        "timestamp": timezone.now(), "actor_id": None, "actor_name": "", "action": "recovery.approved",
        "object_type": "escrow.recoveryrequest", "object_id": "1", "source_ip": None, "details": {},
        "previous_hash": new.hash,
    }
    forged = insert_raw(**fields, hash=event_hash(**fields), key_id="")
    with pytest.raises(CommandError, match=f"broken at event {forged} .*forgery"):
        call_command("verify_audit_log")


@pytest.mark.django_db(transaction=True)
def test_a_new_database_needs_no_switch_event():
    _migrate(BEFORE_THE_KEYED_CHAIN)
    _migrate(_latest_migrations())
    from audit.models import AuditEvent

    assert not AuditEvent.objects.exists()
