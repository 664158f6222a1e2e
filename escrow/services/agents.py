"""Key recovery agents: created (key pair from the issuing CA) or imported, deactivated, and
an agent's PKCS#12 loaded in memory for one operation."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from audit.events import AuditAction
from audit.services import audit_record
from core.exceptions import InvalidState, NotFound
from enrollment.keystore.ca import key_backend_for
from enrollment.pki import ca as pki_ca
from enrollment.pki.keys import generate_private_key
from enrollment.pki.pkcs12 import load_pkcs12
from enrollment.pki.profiles import name_text
from enrollment.selectors import issuing_ca
from enrollment.services.authorities import issuer_info, organization_from_settings

from ..models import KeyRecoveryAgent


@transaction.atomic
def key_recovery_agent_create(*, name: str, user=None, key_type: str = "rsa-3072", actor=None):
    """A new agent: key pair and certificate from the issuing CA. Returns (agent, private key).

    Only the certificate is stored; the caller hands the private key to the agent.
    """
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


def spki(key) -> bytes:
    """The DER SubjectPublicKeyInfo: equal for a private key's public half and its certificate's key."""
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
    agent = KeyRecoveryAgent.objects.select_for_update(no_key=True).filter(pk=agent_id).first()
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
    if not isinstance(bundle.key, rsa.RSAPrivateKey) or spki(bundle.key.public_key()) != spki(certificate.public_key()):
        raise ValidationError({"agent_pkcs12": "The private key in the PKCS#12 file does not belong to its certificate."})
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
    agent = KeyRecoveryAgent.objects.filter(fingerprint_sha256=fingerprint).first()
    if agent is None:
        raise ValidationError(
            {"agent_pkcs12": f"The certificate in the PKCS#12 file ({name_text(certificate.subject)}) "
             "is not a registered key recovery agent."}
        )
    return AgentCredential(agent=agent, private_key=bundle.key)
