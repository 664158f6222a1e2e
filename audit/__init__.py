"""The keyed hash-chained, append-only audit log that every app writes.

- `events.AuditAction`: every event type, declared once.
- `services`: `audit_record` (append under the chain lock), `audit_checkpoint` (signed
  anchors outside the database), the CSV export.
- `chain`: hashing (HMAC under the chain keys of `keys`), verification, anchors;
  `sink`: one line per committed event for an external collector; `selectors`: what auditors read.
- `middleware`/`context`: the client address of the request being served.
- `receivers`: log-ins and failed log-ins; `sql`: PostgreSQL's append-only triggers.
- `admin`, `api/`, and the `verify_audit_log` and `audit_checkpoint` commands.

The table is still `escrow_auditevent` (the model moved here from `escrow` without a
change to the database).
"""
