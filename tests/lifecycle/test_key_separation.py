"""Separate signing and encryption certificates: both lint-clean, only the encryption key escrowed."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from core.exceptions import PickupUnavailable
from enrollment.services.issuance import certificate_pkcs12_export
from enrollment.services.requests import certificate_request_approve, certificate_request_create
from escrow import cms
from escrow.models import EscrowRecord, PickupCopy
from escrow.services.recovery import recovery_request_create

PASSPHRASE = "a long enough passphrase"


@pytest.fixture
def pair(pki, alice, approver, settings):
    settings.PORTAL_KEY_SEPARATION = True
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    request = certificate_request_approve(request_id=request.pk, approver=approver)
    assert request.state == "issued", request.reason
    certificates = {c.usage: c for c in request.certificates.all()}
    assert set(certificates) == {"signing", "encryption"}
    return certificates


def test_split_pair_has_one_key_usage_each_and_both_are_lint_clean(pair, pkilint):
    signing_usage = pair["signing"].x509.extensions.get_extension_for_class(x509.KeyUsage).value
    assert signing_usage.digital_signature and not signing_usage.key_agreement
    encryption_usage = pair["encryption"].x509.extensions.get_extension_for_class(x509.KeyUsage).value
    assert encryption_usage.key_agreement and not encryption_usage.digital_signature
    assert pair["signing"].x509.public_key() != pair["encryption"].x509.public_key()
    for certificate in pair.values():
        code, output = pkilint(
            "lint_cabf_smime_cert", certificate.x509.public_bytes(Encoding.PEM), args=("lint", "-d", "-s", "WARNING")
        )
        assert code == 0 and output.strip() == "", output


def test_only_the_encryption_key_is_escrowed(pair, pki):
    assert not EscrowRecord.objects.filter(certificate=pair["signing"]).exists()
    record = EscrowRecord.objects.get(certificate=pair["encryption"])
    key_der = cms.open_envelope(
        envelope_der=bytes(record.envelope_der), certificate=pki["material"].kra, private_key=pki["material"].kra_key
    )
    from enrollment.pki.keys import private_key_from_der

    assert private_key_from_der(key_der).public_key() == pair["encryption"].x509.public_key()


def test_a_signing_key_download_shortens_its_window_and_the_key_is_never_escrowed(pair, alice):
    """README "Downloading the key": a signing key may be fetched again (another format, another
    device) for SIGNING_KEY_REDOWNLOAD_HOURS after its first download, never longer, then it is gone."""
    from datetime import timedelta

    from django.utils import timezone

    from escrow.services.pickups import SIGNING_KEY_REDOWNLOAD_HOURS

    signing = pair["signing"]
    _, bundle = certificate_pkcs12_export(user=alice, serial=signing.serial, passphrase=PASSPHRASE)
    loaded = pkcs12.load_pkcs12(bundle, PASSPHRASE.encode())
    assert loaded.key.public_key() == signing.x509.public_key()
    assert b"S/MIME signing" in loaded.cert.friendly_name
    window = PickupCopy.objects.get(certificate=signing).expires_at
    assert window <= timezone.now() + timedelta(hours=SIGNING_KEY_REDOWNLOAD_HOURS)
    _, again = certificate_pkcs12_export(user=alice, serial=signing.serial, passphrase=PASSPHRASE, fmt="compatible")
    assert pkcs12.load_pkcs12(again, PASSPHRASE.encode()).key.public_key() == signing.x509.public_key()
    assert PickupCopy.objects.get(certificate=signing).expires_at == window  # a repeat never lengthens it
    PickupCopy.objects.filter(certificate=signing).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(PickupUnavailable):
        certificate_pkcs12_export(user=alice, serial=signing.serial, passphrase=PASSPHRASE)
    # Nothing anywhere can give the signing key back: no escrow.
    assert not EscrowRecord.objects.filter(certificate=signing).exists()
    # The encryption key downloads as often as the window allows.
    for _ in range(2):
        certificate_pkcs12_export(user=alice, serial=pair["encryption"].serial, passphrase=PASSPHRASE)


def test_signing_key_is_gone_when_the_window_closes_undownloaded(pair):
    from datetime import timedelta

    from django.utils import timezone

    from escrow.services.pickups import pickup_copies_purge_expired

    PickupCopy.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert pickup_copies_purge_expired() == 2
    assert not PickupCopy.objects.exists()
    assert EscrowRecord.objects.filter(certificate=pair["encryption"]).exists()


def test_nobody_can_even_ask_to_recover_a_signing_key(pair, alice):
    from django.core.exceptions import ValidationError


    with pytest.raises(ValidationError, match="was not escrowed"):
        recovery_request_create(requested_by=alice, reason="lost laptop", serial=pair["signing"].serial)
    request = recovery_request_create(requested_by=alice, reason="lost laptop", serial=pair["encryption"].serial)
    assert request.status == "pending"
