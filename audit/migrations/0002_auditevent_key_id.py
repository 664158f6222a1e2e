"""The audit chain becomes keyed: each event records the id of the chain key its HMAC is under.

Events written before this migration keep key_id "" and stay verifiable under the unkeyed
rule (plain SHA-256). So that nobody can add more of those later, this migration records the
switch point in the chain itself: after the existing events it appends one keyed event,
`audit.chain_keyed`, naming the last unkeyed event and how many there were, hashed with
the current chain key. The verifier accepts unkeyed events only before that event (chain.py).
A new database (no events) needs none: all its events are keyed.

The table and its append-only triggers (audit/sql.py, escrow 0003; row triggers that list no
columns) are unchanged: adding a column fires no row trigger, on PostgreSQL or SQLite.

Reversing drops the column but not the switch event (the triggers refuse deletes): the
code before this migration would then see the keyed events as broken.
"""

from django.db import migrations, models
from django.utils import timezone


def seal_the_unkeyed_chain(apps, schema_editor):
    from audit.chain import CHAIN_KEYED_ACTION, event_mac
    from audit.keys import chain_keyring
    from audit.services import _CHAIN_LOCK_ID
    from audit.sink import event_logger, sink_line

    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # the chain's lock, as audit.services._lock_chain takes it
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_ID])
    events = apps.get_model("audit", "AuditEvent").objects.using(connection.alias)
    head = events.order_by("-id").values("id", "hash").first()
    if head is None:
        return
    keyring = chain_keyring()
    fields = {
        "timestamp": timezone.now(),
        "actor_id": None,
        "actor_name": "",
        "action": CHAIN_KEYED_ACTION,
        "object_type": "",
        "object_id": "",
        "source_ip": None,
        "details": {
            "unkeyed_events": events.count(),
            "last_unkeyed_id": head["id"],
            "last_unkeyed_hash": head["hash"],
            "rule": "HMAC-SHA256",
            "key_id": keyring.current_id,
        },
        "previous_hash": head["hash"],
    }
    event = events.create(
        **fields, key_id=keyring.current_id, hash=event_mac(key_id=keyring.current_id, keyring=keyring, **fields)
    )
    # The sink gets it as every other event (audit/sink.py), once the migration has committed.
    line = sink_line(event)
    connection.on_commit(lambda: event_logger.info("%s", line), robust=True)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="key_id",
            field=models.CharField(blank=True, default="", max_length=16),
        ),
        migrations.RunPython(seal_the_unkeyed_chain, migrations.RunPython.noop),
    ]
