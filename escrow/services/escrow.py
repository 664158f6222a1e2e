"""Escrow records: each escrowable private key as CMS EnvelopedData to every active key
recovery agent, opened only with an agent's own key; re-wrapping when the agents change."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from audit.events import AuditAction
from audit.services import audit_record
from core.exceptions import ConfigurationError, InvalidState
from enrollment.pki.keys import private_key_from_der, private_key_to_der

from .. import cms
from ..models import EscrowRecord, KeyRecoveryAgent
from .agents import AgentCredential, spki


@transaction.atomic
def escrow_record_create(*, certificate, private_key) -> EscrowRecord:
    agents = list(KeyRecoveryAgent.objects.filter(is_active=True))
    if not agents:
        raise ConfigurationError("No active key recovery agent: the key cannot be escrowed. Create one first.")
    envelope = cms.envelope(
        data=private_key_to_der(private_key), recipients=[agent.certificate for agent in agents]
    )
    record = EscrowRecord.objects.create(certificate=certificate, envelope_der=envelope)
    record.agents.add(*agents)  # a new record: one INSERT (set() first reads what there is)
    audit_record(
        action=AuditAction.ESCROW_CREATED,
        obj=record,
        details={"certificate": certificate.serial, "agents": [agent.fingerprint_sha256 for agent in agents]},
    )
    return record


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
    if spki(key.public_key()) != spki(certificate.x509.public_key()):
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
