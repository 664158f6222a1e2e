"""A download loads the sealed pickup key without OpenSSL's RSA key check (issue 13).

The check costs 96 ms for RSA-3072 on every download; the sealed key is our own, authenticated
by AES-GCM (see pickups._own_key_from_der). Counted by calls, not by time.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from core.exceptions import ConfigurationError
from escrow.models import PickupCopy
from escrow.services.pickups import pickup_copy_export

PASSPHRASE = "a long passphrase"


@pytest.fixture
def key_loads(monkeypatch):
    calls = []
    original = serialization.load_der_private_key

    def spy(data, password, *args, **kwargs):
        calls.append(kwargs.get("unsafe_skip_rsa_key_validation", False))
        return original(data, password, *args, **kwargs)

    monkeypatch.setattr(serialization, "load_der_private_key", spy)
    return calls


@pytest.mark.parametrize("key_type", ["rsa-3072", "ec-p256"])
def test_a_download_loads_the_sealed_key_without_the_rsa_check(pki, alice, approver, key_loads, key_type):
    from enrollment.services.requests import certificate_request_approve, certificate_request_create

    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type=key_type)
    certificate = certificate_request_approve(request_id=request.pk, approver=approver).certificate
    key_loads.clear()
    _, download = pickup_copy_export(actor=alice, serial=certificate.serial, passphrase=PASSPHRASE, fmt="modern")
    assert key_loads == [True], "the pickup key was loaded with OpenSSL's RSA check (or not at all)"
    # Still the right key: the bundle opens and its key matches the certificate.
    bundle = pkcs12.load_pkcs12(download.data, PASSPHRASE.encode())
    assert bundle.key.public_key() == certificate.x509.public_key()


def test_a_tampered_pickup_copy_still_does_not_open(pki, issued, alice):
    sealed = bytearray(issued.pickup.sealed_key)
    sealed[-1] ^= 1
    PickupCopy.objects.filter(pk=issued.pickup.pk).update(sealed_key=bytes(sealed))
    with pytest.raises(ConfigurationError, match="cannot be decrypted"):
        pickup_copy_export(actor=alice, serial=issued.serial, passphrase=PASSPHRASE, fmt="modern")
