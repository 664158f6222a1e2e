"""After issuance and download, no private key or passphrase is in the database or the logs."""

import base64
import logging

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from django.apps import apps
from django.db import connection
from portal_testing import PASSWORD

PASSPHRASE = "Tr0ub4dor&3-unique-passphrase"


def _needles(key) -> list[bytes]:
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    pem_body = b"".join(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .splitlines()[1:-1]
    )
    numbers = key.private_numbers()
    secret_int = getattr(numbers, "d", None) or numbers.private_value
    secret_bytes = secret_int.to_bytes((secret_int.bit_length() + 7) // 8, "big")
    return [der, pem_body, base64.b64encode(der), der.hex().encode(), secret_bytes, secret_bytes.hex().encode(),
            PASSPHRASE.encode()]


def _every_stored_value() -> list[bytes]:
    """Every column of every row of every table, as bytes, straight from the database."""
    values = []
    with connection.cursor() as cursor:
        for model in apps.get_models():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(model._meta.db_table)}")
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, memoryview | bytes | bytearray):
                        values.append(bytes(value))
                    elif value is not None:
                        values.append(str(value).encode())
    return values


@pytest.mark.parametrize("key_type", ["rsa-3072", "ec-p256"])
def test_no_plaintext_key_or_passphrase_in_database_or_logs(pki, client, alice, approver, caplog, key_type):
    from enrollment.services.requests import certificate_request_approve, certificate_request_create

    caplog.set_level(logging.DEBUG)
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type=key_type)
    certificate = certificate_request_approve(request_id=request.pk, approver=approver).certificate
    client.login(username="alice", password=PASSWORD)
    response = client.post(
        f"/certificates/{certificate.serial}/pkcs12/",
        {"passphrase": PASSPHRASE, "passphrase_again": PASSPHRASE, "format": "modern"},
    )
    assert response.status_code == 200
    key = pkcs12.load_pkcs12(response.content, PASSPHRASE.encode()).key

    stored = _every_stored_value()
    assert any(bytes(certificate.der) == value for value in stored)  # the scan does see binary columns
    for needle in _needles(key):
        assert not any(needle in value for value in stored), "secret material found in the database"
        if needle.isascii():  # the textual forms: PEM body, base64, hex, the passphrase
            assert needle.decode() not in caplog.text, "secret material found in the logs"
    assert PASSPHRASE not in response.headers.get("Content-Disposition", "")
