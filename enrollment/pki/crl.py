"""Certificate revocation lists (RFC 5280 5, SBR 4.9.7 / 7.2)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from .profiles import authority_key_identifier

MAX_CRL_VALIDITY = timedelta(days=10)  # nextUpdate - thisUpdate for subscriber CRLs
MAX_ARL_VALIDITY = timedelta(days=365)  # CRLs that only cover CA certificates (root's ARL)

# CA/B Forum CRL profile; `unspecified` is expressed by omitting the reasonCode entry
# extension (RFC 5280 5.3.1), and suspension (certificateHold) is not allowed for S/MIME.
REVOCATION_REASONS: frozenset[x509.ReasonFlags] = frozenset(
    {
        x509.ReasonFlags.key_compromise,
        x509.ReasonFlags.affiliation_changed,
        x509.ReasonFlags.superseded,
        x509.ReasonFlags.cessation_of_operation,
        x509.ReasonFlags.privilege_withdrawn,
    }
)
ARL_REVOCATION_REASONS = REVOCATION_REASONS | {x509.ReasonFlags.ca_compromise}
# The names services and the API accept: members of x509.ReasonFlags, and `unspecified`.
REVOCATION_REASON_NAMES: tuple[str, ...] = ("unspecified", *sorted(reason.name for reason in REVOCATION_REASONS))


def reason_from_name(name: str | None) -> x509.ReasonFlags | None:
    """The CRL reason for a stored reason name; None (no reasonCode entry) for unspecified."""
    if not name or name == "unspecified":
        return None
    return x509.ReasonFlags[name]


@dataclass(frozen=True)
class RevokedEntry:
    serial_number: int
    revocation_date: datetime
    reason: x509.ReasonFlags | None = None


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")
    return value


def _revoked_certificate(
    entry: RevokedEntry, allowed: frozenset[x509.ReasonFlags]
) -> x509.RevokedCertificate:
    builder = (
        x509.RevokedCertificateBuilder()
        .serial_number(entry.serial_number)
        .revocation_date(_aware(entry.revocation_date, "the revocation date"))
    )
    reason = entry.reason
    if reason is not None and reason is not x509.ReasonFlags.unspecified:
        if reason not in allowed:
            raise ValueError(
                f"the revocation reason {reason.name} of serial {entry.serial_number:x} "
                "is not allowed in this CRL"
            )
        builder = builder.add_extension(x509.CRLReason(reason), critical=False)
    return builder.build()


def crl_builder(
    *,
    issuer_certificate: x509.Certificate,
    entries: Iterable[RevokedEntry],
    crl_number: int,
    this_update: datetime,
    next_update: datetime,
    is_arl: bool = False,
) -> x509.CertificateRevocationListBuilder:
    """A complete, unsigned CRL; sign it with the issuer's key backend (`sign_crl`).

    `is_arl` marks a CRL that only covers CA certificates (a root's), which may be valid
    for up to a year and may carry cACompromise.
    """
    _aware(this_update, "this_update")
    _aware(next_update, "next_update")
    if next_update <= this_update:
        raise ValueError("next_update must be after this_update")
    limit = MAX_ARL_VALIDITY if is_arl else MAX_CRL_VALIDITY
    if next_update - this_update > limit:
        raise ValueError(
            f"next_update may be at most {limit.days} days after this_update "
            f"(got {next_update - this_update})"
        )
    if not 0 <= crl_number < 2**159:  # RFC 5280 5.2.3: at most 20 octets
        raise ValueError("the CRL number must be a non-negative integer below 2**159")

    allowed = ARL_REVOCATION_REASONS if is_arl else REVOCATION_REASONS
    seen: set[int] = set()
    revoked: list[x509.RevokedCertificate] = []
    for entry in entries:
        if entry.serial_number in seen:
            raise ValueError(f"serial {entry.serial_number:x} is listed twice")
        seen.add(entry.serial_number)
        revoked.append(_revoked_certificate(entry, allowed))

    # add_revoked_certificate() copies the whole list on every call (O(n^2) for large
    # CRLs); the constructor takes the finished list once.
    return (
        x509.CertificateRevocationListBuilder(revoked_certificates=revoked)
        .issuer_name(issuer_certificate.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(authority_key_identifier(issuer_certificate), critical=False)
    )
