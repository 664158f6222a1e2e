"""Mail with links for every step that waits for a person, through an outbox.

Its own small Django app (label `notifications`, its own migrations) below both workflows:
the enrollment services and the escrow services call `services.notify_*` in their
transaction; it imports models (enrollment's and escrow's), roles and core only, never a
workflow service, so escrow may use it as it uses enrollment's models.

- `models.OutboxMail`: one row per message and recipient, written in the workflow's
  transaction, sent after commit, retried by `manage.py send_pending_mail` (and Celery beat).
- `recipients`: who is told what (separation of duties: nobody is asked to decide their own).
- `services`: the notify_* functions, and sending/draining the outbox.
"""
