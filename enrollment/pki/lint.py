"""pkilint, used programmatically: the S/MIME BR linter that the CLI `lint_cabf_smime_cert` runs.

Building pkilint's validator tree is costly, so it is built once per certificate type and
process. The same goes for the throwaway keys of the pre-issuance check (RSA keygen is slow).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
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


def blocking_findings(findings: Iterable[Finding]) -> list[Finding]:
    """ERROR and FATAL findings: the certificate must not be issued."""
    return findings_at_or_above(findings, "ERROR")


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
    builder: x509.CertificateBuilder, *, ca_public_key: PublicKey
) -> list[Finding]:
    """Pre-issuance linting (SBR 4.3.1.2): lint a copy signed by a throwaway key.

    The throwaway key has the CA key's algorithm and size, so the signature algorithm and
    its encoding are exactly what the real signature will produce.
    """
    key = _throwaway_key_like(ca_public_key)
    return lint_smime_certificate(builder.sign(key, signature_hash_for(key)))
