"""Pre-issuance checks: pkilint (the S/MIME BR linter the CLI `lint_cabf_smime_cert` runs)
plus the portal's own checks of what the SBR added after v1.0.11, which pkilint 0.13.3
does not know (SBR v1.0.16; the table in SMIME-PROFILE.md):

- SMC016 (v1.0.14): no SHA-1 signatures on certificates or CRLs;
- SMC017v2 (v1.0.15): CA keys created after 15 Sep 2026 are RSA >= 4096 or ECDSA
  (`new_ca_key_refusal`); from 15 Sep 2027 no subscriber issuance from an RSA CA key < 3072;
- SMC018 (v1.0.16): from 1 Jul 2027 only id-kp-emailProtection (and optionally
  id-kp-clientAuth) in CA and subscriber EKUs.

Each date is a parameter (`at`), so the rules are tested on both sides of it. The gate
(`blocking_findings`) refuses WARNING findings too: whatever the portal signs lints clean
at WARNING. Building pkilint's validator tree is costly, so it is built once per
certificate type and process. The same goes for the throwaway keys of the pre-issuance
check (RSA keygen is slow).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from pkilint import loader
from pkilint.cabf import smime
from pkilint.pkix import certificate as pkix_certificate
from pkilint.validation import ValidationFindingSeverity

from .backends import signature_hash_for
from .keys import PrivateKey, PublicKey, key_type_of

# FATAL, ERROR, WARNING, NOTICE, INFO, DEBUG: most severe first.
SEVERITIES = tuple(s.name for s in ValidationFindingSeverity)


@dataclass(frozen=True)
class Finding:
    severity: str  # a pkilint severity name: FATAL, ERROR, WARNING, NOTICE, INFO, DEBUG
    code: str
    message: str
    path: str

    def __str__(self) -> str:
        message = f": {self.message}" if self.message else ""
        return f"{self.severity} {self.code} @ {self.path}{message}"


_lock = threading.Lock()
_validators: dict[Any, Any] = {}
_throwaway_keys: dict[str, PrivateKey] = {}


def _validator_for(validation_level: Any, generation: Any) -> Any:
    """The cached validator tree for one S/MIME type; call with `_lock` held."""
    key = (validation_level, generation)
    validator = _validators.get(key)
    if validator is None:
        validator = pkix_certificate.create_pkix_certificate_validator_container(
            smime.create_decoding_validators(),
            smime.create_subscriber_validators(validation_level, generation),
        )
        _validators[key] = validator
    return validator


def lint_smime_certificate(certificate: x509.Certificate) -> list[Finding]:
    """All pkilint findings (every severity) for a subscriber certificate.

    The type comes from the reserved policy OID, like `lint_cabf_smime_cert lint -d`.
    """
    der = certificate.public_bytes(serialization.Encoding.DER)
    document = loader.load_der_certificate(der, "certificate")
    detected = smime.determine_validation_level_and_generation(document)
    if detected is None:
        raise ValueError(
            "cannot determine the S/MIME certificate type: no CA/B Forum S/MIME policy OID"
        )
    # pkilint promises nothing about concurrent use of one validator tree.
    with _lock:
        results = _validator_for(*detected).validate(document.root)
    return [
        Finding(
            severity=description.finding.severity.name,
            code=description.finding.code,
            message=description.message or "",
            path=str(result.node.path),
        )
        for result in results
        for description in result.finding_descriptions
    ]


def findings_at_or_above(findings: Iterable[Finding], severity: str) -> list[Finding]:
    """Findings at least as severe as `severity` (e.g. "WARNING" keeps WARNING, ERROR, FATAL)."""
    try:
        threshold = ValidationFindingSeverity[severity.upper()]
    except KeyError:
        raise ValueError(f"unknown severity {severity!r}; expected one of {SEVERITIES}") from None
    # pkilint orders severities with FATAL = 0: more severe is smaller.
    return [f for f in findings if ValidationFindingSeverity[f.severity] <= threshold]


# The severity from which a finding stops issuance: pkilint's WARNINGs too (for instance
# certificate_validity_period_at_maximum), so that every certificate lints clean at WARNING.
BLOCKING_SEVERITY = "WARNING"


def blocking_findings(findings: Iterable[Finding]) -> list[Finding]:
    """WARNING, ERROR and FATAL findings: the certificate must not be issued."""
    return findings_at_or_above(findings, BLOCKING_SEVERITY)


# --- SBR after v1.0.11: the portal's own checks --------------------------------------------

SBR_VERSION = "1.0.16"
# SMC016: no SHA-1 signatures from this date (the portal never signs with SHA-1: refused always).
SMC016_NO_SHA1 = datetime(2026, 9, 15, tzinfo=timezone.utc)
# SMC017v2: CA keys generated from this date are RSA >= 4096 or ECDSA.
SMC017_NEW_CA_KEYS = datetime(2026, 9, 15, tzinfo=timezone.utc)
SMC017_MIN_NEW_CA_RSA_BITS = 4096
# SMC017v2: from this date no subscriber certificate is signed by an RSA CA key < 3072 bits.
SMC017_SUBSCRIBER_ISSUANCE = datetime(2027, 9, 15, tzinfo=timezone.utc)
SMC017_MIN_ISSUING_RSA_BITS = 3072
# SMC018: from this date CA and subscriber EKUs hold only these.
SMC018_EKU_RESTRICTION = datetime(2027, 7, 1, tzinfo=timezone.utc)
SMC018_ALLOWED_EKUS = frozenset({ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH})


def _at(at: datetime | None) -> datetime:
    return at if at is not None else datetime.now(timezone.utc)


def _finding(code: str, message: str, path: str, severity: str = "ERROR") -> Finding:
    return Finding(severity=severity, code=f"portal.sbr.{code}", message=message, path=path)


def _sha1_findings(signed: x509.Certificate | x509.CertificateRevocationList, what: str) -> list[Finding]:
    """SMC016: a SHA-1 signature (RSA or ECDSA) on a certificate or CRL."""
    try:
        algorithm = signed.signature_hash_algorithm
    except Exception:  # noqa: BLE001 - UnsupportedAlgorithm: not SHA-1, pkilint judges it
        return []
    if isinstance(algorithm, hashes.SHA1):
        return [_finding("smc016_sha1_signature", f"{what} is signed with SHA-1 (SBR 7.1.3.2, SMC016)",
                         f"{what}.signatureAlgorithm")]
    return []


def _eku_findings(certificate: x509.Certificate, *, at: datetime) -> list[Finding]:
    """SMC018: from 1 Jul 2027 only emailProtection (and optionally clientAuth) in the EKU."""
    if at < SMC018_EKU_RESTRICTION:
        return []
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return []  # pkilint requires the EKU where it must be; SMC018 restricts what is in it
    extra = sorted(oid.dotted_string for oid in usages if oid not in SMC018_ALLOWED_EKUS)
    if extra or ExtendedKeyUsageOID.EMAIL_PROTECTION not in list(usages):
        return [_finding(
            "smc018_extended_key_usage",
            "only id-kp-emailProtection (and optionally id-kp-clientAuth) may be in the EKU from "
            f"{SMC018_EKU_RESTRICTION.date()} (SBR 7.1.2, SMC018); found also {', '.join(extra) or 'no emailProtection'}",
            "certificate.tbsCertificate.extensions.extKeyUsage",
        )]
    return []


def sbr_certificate_findings(certificate: x509.Certificate, *, at: datetime | None = None) -> list[Finding]:
    """The SBR v1.0.12-v1.0.16 rules pkilint 0.13.3 lacks, for a CA or subscriber certificate."""
    at = _at(at)
    return [*_sha1_findings(certificate, "certificate"), *_eku_findings(certificate, at=at)]


def sbr_crl_findings(crl: x509.CertificateRevocationList) -> list[Finding]:
    """SMC016 for CRLs: no SHA-1 signature."""
    return _sha1_findings(crl, "crl")


def issuing_key_findings(ca_public_key: PublicKey, *, at: datetime | None = None) -> list[Finding]:
    """SMC017v2: from 15 Sep 2027 no subscriber issuance from an RSA CA key below 3072 bits."""
    if (
        isinstance(ca_public_key, rsa.RSAPublicKey)
        and ca_public_key.key_size < SMC017_MIN_ISSUING_RSA_BITS
        and _at(at) >= SMC017_SUBSCRIBER_ISSUANCE
    ):
        return [_finding(
            "smc017_issuing_ca_key_too_small",
            f"the issuing CA key is RSA-{ca_public_key.key_size}; from {SMC017_SUBSCRIBER_ISSUANCE.date()} "
            f"subscriber certificates need an RSA CA key of at least {SMC017_MIN_ISSUING_RSA_BITS} bits or ECDSA "
            "(SBR 6.1.5, SMC017v2)",
            "issuer.subjectPublicKeyInfo",
        )]
    return []


def new_ca_key_refusal(key_type: str, *, at: datetime | None = None) -> str | None:
    """Why a CA key of `key_type` ("rsa-3072", "ec-p384", ...) may not be created now, or None.

    SMC017v2: CA keys created from 15 Sep 2026 are RSA of at least 4096 bits, or ECDSA.
    Existing CA keys (an imported CA, a key made earlier) are not affected.
    """
    if not key_type.startswith("rsa-") or _at(at) < SMC017_NEW_CA_KEYS:
        return None
    try:
        bits = int(key_type.removeprefix("rsa-"))
    except ValueError:
        return None  # not a key type: the key generator refuses it with its own message
    if bits >= SMC017_MIN_NEW_CA_RSA_BITS:
        return None
    return (
        f"A new CA key must be RSA with at least {SMC017_MIN_NEW_CA_RSA_BITS} bits or ECDSA (S/MIME Baseline "
        f"Requirements 6.1.5, ballot SMC017v2, for CA keys created from {SMC017_NEW_CA_KEYS.date()}), not {key_type}: "
        f"use rsa-{SMC017_MIN_NEW_CA_RSA_BITS} (every mail client) or an ECDSA key."
    )


def _throwaway_key_like(public_key: PublicKey) -> PrivateKey:
    key_type = key_type_of(public_key)
    with _lock:
        key = _throwaway_keys.get(key_type)
    if key is not None:
        return key
    if isinstance(public_key, rsa.RSAPublicKey):
        key = rsa.generate_private_key(public_exponent=65537, key_size=public_key.key_size)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        key = ec.generate_private_key(public_key.curve)
    else:
        raise ValueError(f"unsupported CA key type {type(public_key).__name__}")
    with _lock:
        # Another thread may have won the race; keep one key per algorithm.
        return _throwaway_keys.setdefault(key_type, key)


def lint_before_signing(
    builder: x509.CertificateBuilder, *, ca_public_key: PublicKey, at: datetime | None = None
) -> list[Finding]:
    """Pre-issuance linting (SBR 4.3.1.2): lint a copy signed by a throwaway key.

    The throwaway key has the CA key's algorithm and size, so the signature algorithm and
    its encoding are exactly what the real signature will produce. pkilint's findings, then
    the portal's checks of SBR v1.0.16 (`at`: the issuance time, default now).
    """
    key = _throwaway_key_like(ca_public_key)
    certificate = builder.sign(key, signature_hash_for(key))
    return [
        *lint_smime_certificate(certificate),
        *sbr_certificate_findings(certificate, at=at),
        *issuing_key_findings(ca_public_key, at=at),
    ]
