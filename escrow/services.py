"""Escrow of issued keys and the employee's pickup copy."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from enrollment.exceptions import ConfigurationError, PickupUnavailable
from enrollment.pki.keys import private_key_from_der, private_key_to_der

from . import cms, sealing
from .audit import audit_record
from .models import EscrowRecord, KeyRecoveryAgent, PickupCopy


def _pickup_associated_data(certificate) -> bytes:
    # Binds a sealed key to its certificate: a copy moved to another row will not open.
    return f"smime-portal pickup {certificate.serial}".encode()


def _pickup_kek() -> bytes:
    return sealing.derive_kek(settings.PORTAL_PICKUP_KEK)


@transaction.atomic
def escrow_record_create(*, certificate, private_key) -> EscrowRecord:
    agents = list(KeyRecoveryAgent.objects.filter(is_active=True))
    if not agents:
        raise ConfigurationError("No active key recovery agent: the key cannot be escrowed. Create one first.")
    envelope = cms.envelope(
        data=private_key_to_der(private_key), recipients=[agent.certificate for agent in agents]
    )
    record = EscrowRecord.objects.create(certificate=certificate, envelope_der=envelope)
    record.agents.set(agents)
    audit_record(
        action="escrow.created",
        obj=record,
        details={"certificate": certificate.serial, "agents": [agent.fingerprint_sha256 for agent in agents]},
    )
    return record


@transaction.atomic
def pickup_copy_create(*, certificate, private_key) -> PickupCopy:
    sealed = sealing.seal(
        plaintext=private_key_to_der(private_key),
        kek=_pickup_kek(),
        associated_data=_pickup_associated_data(certificate),
    )
    return PickupCopy.objects.create(
        certificate=certificate,
        sealed_key=sealed,
        expires_at=timezone.now() + timedelta(days=settings.PORTAL_PICKUP_DAYS),
    )


@transaction.atomic
def pickup_copy_open(*, certificate):
    """The private key of a certificate whose pickup window is open; counts the download."""
    pickup = PickupCopy.objects.select_for_update().filter(certificate=certificate).first()
    if pickup is None or pickup.expires_at <= timezone.now():
        raise PickupUnavailable(
            "The key of this certificate is no longer available for download. "
            "Ask a PKI administrator for a key recovery."
        )
    try:
        key_der = sealing.unseal(
            sealed=bytes(pickup.sealed_key), kek=_pickup_kek(), associated_data=_pickup_associated_data(certificate)
        )
    except sealing.SealError:
        raise ConfigurationError(
            "The pickup copy cannot be decrypted: the pickup key-encryption key (PORTAL_PICKUP_KEK) has changed."
        ) from None
    pickup.download_count += 1
    pickup.last_downloaded_at = timezone.now()
    pickup.save(update_fields=["download_count", "last_downloaded_at"])
    return private_key_from_der(key_der)


@transaction.atomic
def pickup_copies_purge_expired() -> int:
    deleted, _ = PickupCopy.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


@transaction.atomic
def key_recovery_agent_create(*, name: str, user=None, key_type: str = "rsa-3072"):
    """A new agent: key pair and certificate from the issuing CA. Returns (agent, private key).

    Only the certificate is stored; the caller hands the private key to the agent.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding

    from enrollment.keystore import key_backend_for
    from enrollment.pki import ca as pki_ca
    from enrollment.pki.keys import generate_private_key
    from enrollment.selectors import issuing_ca
    from enrollment.services import issuer_info, organization_from_settings

    if not key_type.startswith("rsa-"):
        # CMS key transport, which the escrow envelopes use, needs RSA recipients.
        raise ValueError("Key recovery agents need RSA keys.")
    ca = issuing_ca()
    key = generate_private_key(key_type)
    builder = pki_ca.kra_certificate_builder(
        public_key=key.public_key(),
        subject=pki_ca.ca_subject(common_name=name, organization=organization_from_settings()),
        issuer=issuer_info(ca),
    )
    certificate = key_backend_for(ca).sign_certificate(builder)
    agent = KeyRecoveryAgent.objects.create(
        name=name,
        user=user,
        certificate_der=certificate.public_bytes(Encoding.DER),
        fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(),
    )
    audit_record(action="kra.created", actor=None, obj=agent, details={"name": name})
    return agent, key
