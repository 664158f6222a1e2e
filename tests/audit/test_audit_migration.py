"""The audit log left the escrow app (audit 0001, escrow 0004) without a change to its table.

A database migrated before the move, with a chain of events in it and the Auditors'
permission granted on the old content type, is migrated forward: the chain verifies, the
events are the audit app's, and the grant follows the model.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audit.chain import GENESIS_HASH, event_hash

BEFORE_THE_MOVE = [("escrow", "0003_audit_append_only"), ("audit", None)]


def _migrate(targets):
    """Migrate to `targets`; the project state there (its models as they were then)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)._create_project_state(with_applied_migrations=True)


def _chain_as_main_wrote_it(apps, count: int) -> list[str]:
    """Events as the code before the move appended them: same fields, same hash rule."""
    old_event = apps.get_model("escrow", "AuditEvent")
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

    assert list(AuditEvent.objects.order_by("id").values_list("hash", flat=True)) == hashes
    call_command("verify_audit_log")
    assert "intact" in capsys.readouterr().out
    moved = Group.objects.get(name="Auditors before the move").permissions.get()
    assert (moved.content_type.app_label, moved.codename) == ("audit", "view_auditevent")
