"""audit.sql: on PostgreSQL the database itself refuses UPDATE and DELETE of audit events.

The lead's migration installs AUDIT_APPEND_ONLY_SQL; this test installs it within the test's
own transaction, so that it runs whether or not the migration exists yet.
"""

import pytest
from django.db import DatabaseError, connection, transaction

from audit.chain import audit_chain_breaks
from audit.models import AuditEvent
from audit.services import audit_record
from audit.sql import AUDIT_APPEND_ONLY_REVERSE_SQL, AUDIT_APPEND_ONLY_SQL

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL triggers; `make test-postgres` runs this"
)


@pytest.fixture
def append_only(db):
    with connection.cursor() as cursor:
        cursor.execute(AUDIT_APPEND_ONLY_SQL)
    yield
    with connection.cursor() as cursor:
        cursor.execute(AUDIT_APPEND_ONLY_REVERSE_SQL)


def test_update_and_delete_are_refused_and_appending_still_works(append_only):
    first = audit_record(action="ca.created", details={"n": 1})
    for attempt in (
        lambda: AuditEvent.objects.filter(pk=first.pk).update(details={"n": 2}),
        lambda: AuditEvent.objects.filter(pk=first.pk).delete(),
        lambda: AuditEvent.objects.all().delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"):
            with transaction.atomic():
                attempt()
    second = audit_record(action="crl.generated")
    assert list(AuditEvent.objects.order_by("id").values_list("pk", "details")) == [
        (first.pk, {"n": 1}), (second.pk, {}),
    ]
    assert audit_chain_breaks(AuditEvent.objects.order_by("id")) is None


def test_installing_twice_is_harmless(append_only):
    with connection.cursor() as cursor:
        cursor.execute(AUDIT_APPEND_ONLY_SQL)
    event = audit_record(action="ca.created")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="test.other")


def test_the_table_owner_can_still_tamper_which_the_chain_then_catches(append_only):
    """The tampering tests keep working once the migration installs the triggers."""
    from test_verify_audit_log import tamper

    events = [audit_record(action="crl.generated") for i in range(3)]
    tamper(lambda: AuditEvent.objects.filter(pk=events[1].pk).delete())
    assert audit_chain_breaks(AuditEvent.objects.order_by("id")).pk == events[2].pk
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=events[2].pk).delete()  # and the triggers are back on
