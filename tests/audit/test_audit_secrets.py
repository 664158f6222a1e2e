"""The audit log records log-ins and downloads, never a password or a passphrase."""

import base64
import logging

from cryptography.hazmat.primitives.serialization import pkcs12
from django.db import connection
from portal_testing import PASSWORD

from audit.models import AuditEvent
from audit.services import audit_checkpoint

PASSPHRASE = "Correct-Staple-9-audit-passphrase"
API_PASSPHRASE = "another-Long-passphrase-42"
WRONG_PASSWORD = "Wrong-Password-typed-77"


def audit_table_text() -> str:
    """Every column of every row of the audit table, straight from the database."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")
        return "\n".join(" ".join(str(value) for value in row) for row in cursor.fetchall())


def test_no_password_or_passphrase_in_any_audit_event(issued, client, approver, caplog, tmp_path, settings):
    caplog.set_level(logging.DEBUG)
    settings.PORTAL_AUDIT_ANCHOR_FILE = tmp_path / "anchors.jsonl"

    # Log-ins: the self-service page, the admin, and a failed one.
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    failed = client.post("/admin/login/", {"username": "approver", "password": WRONG_PASSWORD})
    assert failed.status_code == 200
    admin = client.post("/admin/login/?next=/admin/", {"username": "approver", "password": PASSWORD})
    assert admin.status_code == 302

    # Downloads: the self-service page, and the API with HTTP Basic.
    client.post("/login/", {"username": "alice", "password": PASSWORD})
    response = client.post(
        f"/certificates/{issued.serial}/pkcs12/",
        {"passphrase": PASSPHRASE, "passphrase_again": PASSPHRASE, "format": "modern"},
    )
    assert response.status_code == 200
    assert pkcs12.load_pkcs12(response.content, PASSPHRASE.encode()).key is not None
    token = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    response = client.post(
        f"/api/v1/certificates/{issued.serial}/pkcs12/",
        {"passphrase": API_PASSPHRASE, "format": "compatible"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {token}",
    )
    assert response.status_code == 200
    audit_checkpoint(key="anchor-key-for-this-test")

    downloads = AuditEvent.objects.filter(action="certificate.pkcs12_downloaded", object_id=str(issued.pk))
    assert downloads.count() == 2  # the events exist, so the search below is not vacuous
    stored = audit_table_text()
    assert "alice" in stored and "pkcs12_downloaded" in stored
    anchors = settings.PORTAL_AUDIT_ANCHOR_FILE.read_text()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (PASSWORD, PASSPHRASE, API_PASSPHRASE, WRONG_PASSWORD, token):
        assert secret not in stored
        assert secret not in anchors
        assert secret not in logged
