"""PostgreSQL triggers that make the audit table append-only in the database itself.

For a migration:

    from django.db import migrations

    from audit.sql import AUDIT_APPEND_ONLY_SQL, AUDIT_APPEND_ONLY_REVERSE_SQL


    def forwards(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(AUDIT_APPEND_ONLY_SQL)


    def backwards(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(AUDIT_APPEND_ONLY_REVERSE_SQL)


    class Migration(migrations.Migration):
        dependencies = [("audit", "<latest>")]
        operations = [migrations.RunPython(forwards, backwards)]

No TRUNCATE trigger: Django's test database flush truncates every table between
transactional tests; grant the portal's role no TRUNCATE privilege instead. Tests that
tamper with rows on purpose disable the triggers around it
(`ALTER TABLE escrow_auditevent DISABLE TRIGGER USER`, as the table's owner).

The table's owner can disable or drop the triggers; run the portal as a role that does not
own its tables, so that the portal itself cannot. Against whoever can, there are the keyed
hash chain, the anchors and the event sink (`audit_checkpoint`, `verify_audit_log --anchors`).
The triggers list no columns: columns added later (key_id, audit 0002) need no change here.

Precondition: AuditEvent.actor must not be on_delete=SET_NULL (deleting a user would
UPDATE audit rows, which these triggers refuse, and which would break the chain anyway
because actor_id is hashed); PROTECT keeps both intact.
"""

TABLE = "escrow_auditevent"

AUDIT_APPEND_ONLY_SQL = f"""
CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on {TABLE} refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER IF EXISTS {TABLE}_no_update_delete ON {TABLE};
CREATE TRIGGER {TABLE}_no_update_delete
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only();
"""

AUDIT_APPEND_ONLY_REVERSE_SQL = f"""
DROP TRIGGER IF EXISTS {TABLE}_no_update_delete ON {TABLE};
DROP FUNCTION IF EXISTS {TABLE}_append_only();
"""
