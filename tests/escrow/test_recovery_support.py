"""Fixtures and helpers shared by the key recovery tests (imported by test_recovery_*.py and
test_kra_*.py; this module holds no tests of its own)."""

from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from portal_testing import PASSWORD
from recovery_testing import AGENT_PASSPHRASE, agent_p12, agent_user  # noqa: F401 - shared fixtures

DOWNLOAD_PASSPHRASE = "recipient-chooses-this-9Zk"


def spki(key_or_certificate) -> bytes:
    public_key = key_or_certificate.public_key()
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def approved_recovery(issued, alice, approver, approver2):
    """alice asked for her key back; both approvers approved."""
    from escrow.services.recovery import recovery_request_approve, recovery_request_create

    request = recovery_request_create(requested_by=alice, reason="Laptop stolen", serial=issued.serial)
    recovery_request_approve(request_id=request.pk, approver=approver, comment="ok")
    request = recovery_request_approve(request_id=request.pk, approver=approver2, comment="ok too")
    assert request.status == "approved"
    return request


def login(client, username: str):
    assert client.login(username=username, password=PASSWORD)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def csrf_free_text(content: bytes) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", content.decode())
