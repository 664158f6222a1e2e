"""The agent's credential is used in memory only: after recoveries through the admin, the API and
the command, neither its passphrase nor its key (nor the uploaded PKCS#12, nor the recovered key)
is in any table or in the log output."""

from __future__ import annotations

import base64
import logging

from cryptography.hazmat.primitives import serialization
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from test_recovery_support import (  # noqa: F401 - fixtures
    AGENT_PASSPHRASE,
    DOWNLOAD_PASSPHRASE,
    agent_p12,
    agent_user,
    login,
    spki,
)

from enrollment.pki.pkcs12 import load_pkcs12
from escrow.services.recovery import recovery_request_approve, recovery_request_create


def _forms(key) -> list[bytes]:
    """A private key in every encoding it could leak in."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    traditional = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    pem_body = b"".join(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .splitlines()[1:-1]
    )
    numbers = key.private_numbers()
    secret = getattr(numbers, "d", None) or numbers.private_value
    secret_bytes = secret.to_bytes((secret.bit_length() + 7) // 8, "big")
    return [der, traditional, pem_body, base64.b64encode(der), der.hex().encode(), secret_bytes, secret_bytes.hex().encode()]


def _every_stored_value() -> list[bytes]:
    """Every column of every row of every table (text and binary), straight from the database."""
    values = []
    with connection.cursor() as cursor:
        for model in apps.get_models(include_auto_created=True):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(model._meta.db_table)}")
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, memoryview | bytes | bytearray):
                        values.append(bytes(value))
                    elif value is not None:
                        values.append(str(value).encode())
    return values


def test_agent_credential_and_recovered_key_are_stored_nowhere(
    pki, issued, alice, approver, approver2, agent_user, agent_p12, client, caplog, tmp_path
):
    caplog.set_level(logging.DEBUG)
    material = pki["material"]
    requests = []

    def approved():
        request = recovery_request_create(requested_by=alice, reason="lost again", serial=issued.serial)
        recovery_request_approve(request_id=request.pk, approver=approver)
        recovery_request_approve(request_id=request.pk, approver=approver2)
        requests.append(request)
        return request

    # 1. The admin upload, once with a wrong passphrase first.
    login(client, "agent")
    url = f"/admin/escrow/recoveryrequest/{approved().pk}/complete/"
    client.post(url, {"agent_pkcs12": _upload(agent_p12), "passphrase": AGENT_PASSPHRASE[:-1]})
    response = client.post(url, {"agent_pkcs12": _upload(agent_p12), "passphrase": AGENT_PASSPHRASE})
    assert response.status_code == 302
    # 2. The API.
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(agent_user)
    response = api.post(
        f"/api/v1/recoveries/{approved().pk}/complete/",
        {"agent_pkcs12": _upload(agent_p12), "passphrase": AGENT_PASSPHRASE},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    # 3. The command, with the passphrase in the environment.
    p12 = tmp_path / "agent.p12"
    p12.write_bytes(agent_p12)
    import os

    os.environ["PORTAL_KRA_PASSPHRASE"] = AGENT_PASSPHRASE
    try:
        call_command("recover_key", str(approved().pk), "--kra-p12", str(p12), "--user", "agent")
    finally:
        del os.environ["PORTAL_KRA_PASSPHRASE"]

    client.logout()
    login(client, "alice")
    response = client.post(
        f"/recovery/{requests[0].pk}/pkcs12/{issued.serial}/",
        {"passphrase": DOWNLOAD_PASSPHRASE, "passphrase_again": DOWNLOAD_PASSPHRASE, "format": "modern"},
    )
    recovered = load_pkcs12(response.content, DOWNLOAD_PASSPHRASE).key
    assert spki(recovered) == spki(issued.x509)

    stored = _every_stored_value()
    assert any(bytes(issued.escrow.envelope_der) == value for value in stored)  # the scan sees binary columns
    assert sum(1 for value in stored if b"recovery.completed" == value) == 3  # and the audit table
    needles = [
        *_forms(material.kra_key),
        *_forms(recovered),
        agent_p12,
        agent_p12[len(agent_p12) // 2 : len(agent_p12) // 2 + 48],  # any part of the uploaded file
        AGENT_PASSPHRASE.encode(),
        AGENT_PASSPHRASE[:-1].encode(),
        DOWNLOAD_PASSPHRASE.encode(),
    ]
    for needle in needles:
        assert not any(needle in value for value in stored), "agent or recovered key material found in the database"
        if needle.isascii():
            assert needle.decode() not in caplog.text, "secret material found in the log output"
    assert AGENT_PASSPHRASE not in caplog.text


def _upload(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("agent.p12", data, content_type="application/x-pkcs12")


def test_error_reports_hide_the_passphrase(pki, issued, alice, agent_user, agent_p12, client):
    """Django's error reports (mail to ADMINS, the debug page) filter the passphrase out."""
    from django.views.debug import SafeExceptionReporterFilter
    from rest_framework.test import APIClient

    request = recovery_request_create(requested_by=alice, reason="x", serial=issued.serial)
    login(client, "agent")
    admin_response = client.post(
        f"/admin/escrow/recoveryrequest/{request.pk}/complete/",
        {"agent_pkcs12": _upload(agent_p12), "passphrase": AGENT_PASSPHRASE},
    )
    api = APIClient()
    api.force_authenticate(agent_user)
    api_response = api.post(
        f"/api/v1/recoveries/{request.pk}/complete/",
        {"agent_pkcs12": _upload(agent_p12), "passphrase": AGENT_PASSPHRASE},
        format="multipart",
    )
    assert api_response.status_code == 409  # not approved yet
    for response in (admin_response, api_response):
        cleaned = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
        assert cleaned["passphrase"] != AGENT_PASSPHRASE
