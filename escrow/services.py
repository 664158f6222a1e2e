"""Escrow of issued keys and the employee's pickup copy."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from core.exceptions import ConfigurationError, InvalidState, NotFound, PickupUnavailable
from enrollment.pki.keys import private_key_from_der, private_key_to_der
from enrollment.pki.profiles import name_text

from core.mail import mail_on_commit

from . import cms, sealing
from audit.events import AuditAction
from audit.services import audit_record
from .models import EscrowRecord, KeyRecoveryAgent, PickupCopy

logger = logging.getLogger(__name__)


def _escrow_notice(certificate) -> None:
    mail_on_commit(
        to=[certificate.employee.mail],
        subject=f"Your S/MIME key {certificate.serial} is in escrow",
        body=(
            f"Hello {certificate.employee.display_name},\n\n"
            f"the private key of your new S/MIME certificate {certificate.serial} ({certificate.mailbox}) "
            "has been escrowed: it is kept encrypted to the organization's key recovery agents, so that mail "
            "encrypted to you stays readable if you lose the key. A recovery needs the approval of "
            f"{settings.PORTAL_RECOVERY_APPROVALS} approver(s), and you are told by mail when one is "
            "requested and when it is completed.\n"
        ),
    )


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
        action=AuditAction.ESCROW_CREATED,
        obj=record,
        details={"certificate": certificate.serial, "agents": [agent.fingerprint_sha256 for agent in agents]},
    )
    _escrow_notice(certificate)
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
    """Delete expired pickup copies and wipe expired recovered keys; returns how many.

    A recovered key's row stays (who received what, downloads); only its sealed key goes.
    """
    from .models import RecoveryPickup

    now = timezone.now()
    deleted, _ = PickupCopy.objects.filter(expires_at__lte=now).delete()
    wiped = RecoveryPickup.objects.filter(expires_at__lte=now).exclude(sealed_key=b"").update(sealed_key=b"")
    return deleted + wiped


@transaction.atomic
def key_recovery_agent_create(*, name: str, user=None, key_type: str = "rsa-3072", actor=None):
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

    if not name.strip():
        raise ValidationError({"name": "Name the key recovery agent."})
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
    audit_record(
        action=AuditAction.KRA_CREATED,
        actor=actor,
        obj=agent,
        details={"name": name, "fingerprint": agent.fingerprint_sha256, "user": user.get_username() if user else ""},
    )
    return agent, key


# --- Key recovery agents: import, deactivation, re-wrapping -------------------------------


def _spki(key) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def key_transport_problems(certificate: x509.Certificate) -> list[str]:
    """Why a certificate cannot receive escrowed keys by CMS key transport (empty: it can)."""
    problems = []
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        problems.append(f"its key is {type(public_key).__name__.removeprefix('_')}, not RSA (CMS key transport needs RSA)")
    elif public_key.key_size < 2048:
        problems.append(f"its RSA key has {public_key.key_size} bits, fewer than 2048")
    try:
        key_usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        problems.append("it has no keyUsage extension (keyEncipherment is needed)")
    else:
        if not key_usage.key_encipherment:
            problems.append("its keyUsage lacks keyEncipherment")
    try:
        if certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            problems.append("it is a CA certificate")
    except x509.ExtensionNotFound:
        pass
    now = timezone.now()
    if certificate.not_valid_after_utc <= now:
        problems.append(f"it expired on {certificate.not_valid_after_utc:%Y-%m-%d}")
    elif certificate.not_valid_before_utc > now:
        problems.append(f"it is not valid before {certificate.not_valid_before_utc:%Y-%m-%d}")
    return problems


@transaction.atomic
def key_recovery_agent_import(*, certificate: x509.Certificate, name: str = "", user=None, actor=None) -> KeyRecoveryAgent:
    """Register an existing agent certificate (its key stays with the agent)."""
    problems = key_transport_problems(certificate)
    if problems:
        raise ValidationError({"certificate": "The certificate cannot receive escrowed keys: " + "; ".join(problems) + "."})
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
    if KeyRecoveryAgent.objects.filter(fingerprint_sha256=fingerprint).exists():
        raise ValidationError({"certificate": f"This certificate is registered already (SHA-256 {fingerprint})."})
    if not name:
        common_names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        name = str(common_names[0].value) if common_names else name_text(certificate.subject)
    agent = KeyRecoveryAgent(
        name=name[:128],
        user=user,
        certificate_der=certificate.public_bytes(Encoding.DER),
        fingerprint_sha256=fingerprint,
    )
    agent.full_clean()
    agent.save()
    audit_record(
        action=AuditAction.KRA_IMPORTED,
        actor=actor,
        obj=agent,
        details={"name": agent.name, "fingerprint": fingerprint, "subject": name_text(certificate.subject)},
    )
    return agent


@transaction.atomic
def key_recovery_agent_deactivate(*, agent_id: int, actor=None) -> KeyRecoveryAgent:
    """Stop escrowing to an agent. Existing records stay decryptable by it until `rewrap_escrow`."""
    agent = KeyRecoveryAgent.objects.select_for_update().filter(pk=agent_id).first()
    if agent is None:
        raise NotFound(f"There is no key recovery agent #{agent_id}.")
    if not agent.is_active:
        raise InvalidState(f"The key recovery agent {agent.name} is deactivated already.")
    if not KeyRecoveryAgent.objects.filter(is_active=True).exclude(pk=agent.pk).exists():
        raise InvalidState(
            f"{agent.name} is the only active key recovery agent; without one no key can be escrowed "
            "and no certificate issued. Create or import another agent first."
        )
    agent.is_active = False
    agent.save(update_fields=["is_active"])
    audit_record(
        action=AuditAction.KRA_DEACTIVATED, actor=actor, obj=agent, details={"name": agent.name, "fingerprint": agent.fingerprint_sha256}
    )
    return agent


@dataclass(frozen=True)
class AgentCredential:
    """An agent's certificate and private key, loaded for one operation and kept in memory only."""

    agent: KeyRecoveryAgent
    private_key: rsa.RSAPrivateKey = field(repr=False)


@sensitive_variables("pkcs12_data", "passphrase", "bundle")
def agent_credential_load(*, pkcs12_data: bytes, passphrase: str) -> AgentCredential:
    """The registered agent whose certificate and key are in the PKCS#12; ValidationError otherwise.

    Nothing of the bundle is stored, logged or put into an error message.
    """
    from enrollment.pki.pkcs12 import load_pkcs12

    if not pkcs12_data:
        raise ValidationError({"agent_pkcs12": "Upload the agent's PKCS#12 file."})
    try:
        bundle = load_pkcs12(pkcs12_data, passphrase or "")
    except (ValueError, TypeError):
        raise ValidationError(
            {"agent_pkcs12": "The PKCS#12 file cannot be opened: wrong passphrase, or not a PKCS#12 file."}
        ) from None
    if bundle.key is None or bundle.cert is None:
        raise ValidationError({"agent_pkcs12": "The PKCS#12 file must hold the agent's certificate and private key."})
    certificate = bundle.cert.certificate
    if not isinstance(bundle.key, rsa.RSAPrivateKey) or _spki(bundle.key.public_key()) != _spki(certificate.public_key()):
        raise ValidationError({"agent_pkcs12": "The private key in the PKCS#12 file does not belong to its certificate."})
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
    agent = KeyRecoveryAgent.objects.filter(fingerprint_sha256=fingerprint).first()
    if agent is None:
        raise ValidationError(
            {"agent_pkcs12": f"The certificate in the PKCS#12 file ({name_text(certificate.subject)}) "
             "is not a registered key recovery agent."}
        )
    return AgentCredential(agent=agent, private_key=bundle.key)


def escrow_record_open(*, record: EscrowRecord, credential: AgentCredential):
    """The escrowed private key, checked against the certificate; InvalidState if the agent cannot open it."""
    certificate = record.certificate
    if not record.agents.filter(pk=credential.agent.pk).exists():
        raise InvalidState(
            f"The escrow of certificate {certificate.serial} is not encrypted to {credential.agent.name}."
        )
    try:
        key_der = cms.open_envelope(
            envelope_der=bytes(record.envelope_der),
            certificate=credential.agent.certificate,
            private_key=credential.private_key,
        )
        key = private_key_from_der(key_der)
    except ValueError:
        raise InvalidState(
            f"The escrow of certificate {certificate.serial} does not open with {credential.agent.name}'s key."
        ) from None
    if _spki(key.public_key()) != _spki(certificate.x509.public_key()):
        raise InvalidState(
            f"The escrowed key of certificate {certificate.serial} does not match the certificate's public key."
        )
    return key


@dataclass
class RewrapResult:
    rewrapped: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def escrow_records_rewrap(*, credential: AgentCredential, actor=None) -> RewrapResult:
    """Re-envelope every escrow record not yet addressed to exactly the active agents.

    Each record is decrypted with the given agent's key and enveloped again to all active
    agents, in its own transaction; records this agent cannot open are reported. The agent
    may be one that was just deactivated: retiring an agent means re-wrapping with its key.
    """
    result = RewrapResult()
    active = list(KeyRecoveryAgent.objects.filter(is_active=True).order_by("pk"))
    if not active:
        raise ConfigurationError("No active key recovery agent to re-encrypt the escrow to. Create one first.")
    active_ids = {agent.pk for agent in active}
    # Ids first: each record is then read, opened and written in its own short transaction.
    for record_id in list(EscrowRecord.objects.order_by("pk").values_list("pk", flat=True)):
        record = EscrowRecord.objects.select_related("certificate").prefetch_related("agents").get(pk=record_id)
        serial = record.certificate.serial
        if {agent.pk for agent in record.agents.all()} == active_ids:
            result.unchanged.append(serial)
            continue
        try:
            escrow_record_rewrap(record=record, credential=credential, agents=active, actor=actor)
        except InvalidState as exc:
            result.failed.append((serial, exc.message))
        else:
            result.rewrapped.append(serial)
    return result


@transaction.atomic
def escrow_record_rewrap(*, record: EscrowRecord, credential: AgentCredential, agents: list[KeyRecoveryAgent], actor=None):
    record = EscrowRecord.objects.select_for_update(of=("self",)).select_related("certificate").get(pk=record.pk)
    key = escrow_record_open(record=record, credential=credential)
    before = sorted(record.agents.values_list("fingerprint_sha256", flat=True))
    record.envelope_der = cms.envelope(data=private_key_to_der(key), recipients=[agent.certificate for agent in agents])
    record.save(update_fields=["envelope_der"])
    record.agents.set(agents)
    audit_record(
        action=AuditAction.ESCROW_REWRAPPED,
        actor=actor,
        obj=record,
        details={
            "certificate": record.certificate.serial,
            "opened_by": credential.agent.fingerprint_sha256,
            "agents_before": before,
            "agents": [agent.fingerprint_sha256 for agent in agents],
        },
    )
    return record
