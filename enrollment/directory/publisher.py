"""Make a person's directory entry carry the certificates senders should encrypt to.

Pure decisions (which values to add, which to remove) plus the operation on a
DirectoryClient. No Django. The caller (services.py) says what the entry should hold;
this module makes it so, idempotently. The rules:

- only certificates whose key can encrypt (keyUsage keyEncipherment or keyAgreement:
  dual use or encryption-only) are ever written; a signing-only certificate is never
  published, since senders would encrypt to a key that was never escrowed;
- each wanted certificate goes into the certificate attribute (userCertificate;binary, or
  userCertificate on AD) and, if configured, as a degenerate PKCS#7 (certificate and
  chain) into userSMIMECertificate;
- every other value this portal's CAs issued (signature checked against the CA
  certificates) is taken off the entry: older, revoked, expired or signing-only ones;
- values anyone else put there (other CAs, self-signed) are never touched;
- on the person's earlier entries (a directory DN that changed) only the person's own
  certificates are removed;
- syncing an entry that already holds what is wanted writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from ldap3.utils.dn import parse_dn

from .client import ConcurrentChange, DirectoryClient, DirectoryEntry, DirectoryError, EntryLocator, EntryNotFound


def smime_value(certificate: x509.Certificate, chain: Sequence[x509.Certificate]) -> bytes:
    """userSMIMECertificate: a certs-only PKCS#7 SignedData with the certificate and its chain."""
    return pkcs7.serialize_certificates([certificate, *chain], Encoding.DER)


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def issued_by(certificate: x509.Certificate, issuers: Sequence[x509.Certificate]) -> bool:
    """Whether one of `issuers` signed `certificate` (issuer name, AKI and signature)."""
    try:
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        aki = None
    for issuer in issuers:
        if certificate.issuer != issuer.subject:
            continue
        if aki is not None:
            try:
                ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except x509.ExtensionNotFound:
                ski = x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest
            if ski != aki:
                continue
        try:
            certificate.verify_directly_issued_by(issuer)
        except Exception:  # noqa: BLE001 - InvalidSignature, ValueError, TypeError: not ours
            continue
        return True
    return False


def _load_certificate(value: bytes) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(value)
    except ValueError:
        return None


def _smime_leaf(value: bytes, issuers: Sequence[x509.Certificate]) -> x509.Certificate | None:
    """The portal-issued end-entity certificate inside a userSMIMECertificate value, if any."""
    try:
        certificates = pkcs7.load_der_pkcs7_certificates(value)
    except ValueError:
        return None
    for certificate in certificates:
        if issued_by(certificate, issuers) and not _is_ca(certificate):
            return certificate
    return None


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def key_roles(certificate: x509.Certificate) -> frozenset[str]:
    """What the certificate's key is for: signing, encryption, or both (dual use), from keyUsage."""
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return frozenset({"signing", "encryption"})
    roles = set()
    if usage.digital_signature or usage.content_commitment:
        roles.add("signing")
    if usage.key_encipherment or usage.key_agreement:
        roles.add("encryption")
    return frozenset(roles or {"signing", "encryption"})


def encryption_capable(certificate: x509.Certificate) -> bool:
    """Whether a sender can encrypt to the certificate's key (dual use or encryption-only)."""
    return "encryption" in key_roles(certificate)


@dataclass(frozen=True)
class Wanted:
    """A certificate the entry should carry, with the chain for userSMIMECertificate."""

    certificate: x509.Certificate
    chain: Sequence[x509.Certificate] = ()


@dataclass
class SyncOutcome:
    entry_dn: str
    changed: bool = False
    # SHA-256 fingerprints (hex) of the wanted certificates written now (they were missing).
    added: list[str] = field(default_factory=list)
    # SHA-256 fingerprints of the portal's certificates taken off the entry.
    removed: list[str] = field(default_factory=list)
    # The person's earlier entries (DNs) that the person's certificates were taken off.
    cleaned: list[str] = field(default_factory=list)


@dataclass
class _Plan:
    add: dict[str, list[bytes]] = field(default_factory=dict)
    delete: dict[str, list[bytes]] = field(default_factory=dict)
    replace: dict[str, list[bytes]] = field(default_factory=dict)
    added: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)

    @property
    def changes(self) -> bool:
        return any(self.add.values()) or any(self.delete.values()) or bool(self.replace)


def _plan(
    entry: DirectoryEntry,
    *,
    wanted: Sequence[Wanted],
    issuers: Sequence[x509.Certificate],
    removable: Callable[[x509.Certificate], bool],
    certificate_attribute: str,
    smime_attribute: str | None,
) -> _Plan:
    """What to change so that the entry holds exactly `wanted` among the values `removable` covers."""
    plan = _Plan()
    wanted_der = {fingerprint(w.certificate): w.certificate.public_bytes(Encoding.DER) for w in wanted}

    present = set()
    for value in entry.get(certificate_attribute):
        if value in wanted_der.values():
            present.add(value)
            continue
        other = _load_certificate(value)
        if other is not None and removable(other):
            plan.delete.setdefault(certificate_attribute, []).append(value)
            plan.removed.add(fingerprint(other))
    for own_fingerprint, value in wanted_der.items():
        if value not in present:
            plan.add.setdefault(certificate_attribute, []).append(value)
            plan.added.add(own_fingerprint)

    if smime_attribute:
        wanted_smime = {fingerprint(w.certificate): smime_value(w.certificate, w.chain) for w in wanted}
        kept, seen, dropped = [], set(), False
        for value in entry.get(smime_attribute):
            leaf = _smime_leaf(value, issuers)
            leaf_fingerprint = fingerprint(leaf) if leaf is not None else ""
            if leaf_fingerprint in wanted_smime and value == wanted_smime[leaf_fingerprint] and leaf_fingerprint not in seen:
                kept.append(value)
                seen.add(leaf_fingerprint)
            elif leaf_fingerprint in wanted_smime:
                dropped = True  # a stale encoding (the chain changed) or a duplicate: rewritten
            elif leaf is not None and removable(leaf):
                dropped = True
                plan.removed.add(leaf_fingerprint)
            else:
                kept.append(value)
        missing = [value for own_fingerprint, value in wanted_smime.items() if own_fingerprint not in seen]
        plan.added.update(own_fingerprint for own_fingerprint in wanted_smime if own_fingerprint not in seen)
        if dropped or missing:
            # OpenLDAP's userSMIMECertificate has no equality rule: the attribute is rewritten whole.
            plan.replace[smime_attribute] = kept + missing
    return plan


def _normalized_dn(dn: str) -> tuple:
    try:
        return tuple((attribute.lower(), value.lower()) for attribute, value, _ in parse_dn(dn))
    except Exception:  # noqa: BLE001 - an unparsable stored DN compares as written
        return (dn.strip().lower(),)


def entry_attributes(config) -> list[str]:
    """The attributes sync_entry reads (and a batch prefetches): the certificate one, and the S/MIME one if published."""
    smime_attribute = config.smime_attribute if config.publish_smime_capable else None
    return [config.certificate_attribute] + ([smime_attribute] if smime_attribute else [])


def _write(
    client: DirectoryClient, locator: EntryLocator, *, attributes: list[str], planner, read: DirectoryEntry | None = None
) -> tuple[str, _Plan]:
    """Read (unless `read` is the entry as just read), plan, write; read and plan again when the entry changed in between."""
    for _attempt in range(3):
        entry, read = read or client.find_entry(locator, attributes=attributes), None
        plan = planner(entry)
        if not plan.changes:
            return entry.dn, plan
        try:
            client.modify_values(entry.dn, add=plan.add, delete=plan.delete, replace=plan.replace)
        except ConcurrentChange:
            continue  # someone changed the entry between our read and write: read again
        return entry.dn, plan
    raise DirectoryError(f"{entry.dn} kept changing while the portal wrote to it; it tries again later.")


def sync_entry(
    client: DirectoryClient,
    locator: EntryLocator,
    *,
    wanted: Sequence[Wanted],
    issuers: Sequence[x509.Certificate],
    own: Iterable[str] = (),
    elsewhere: Iterable[str] = (),
    entry: DirectoryEntry | None = None,
) -> SyncOutcome:
    """Make the person's entry carry exactly `wanted` among the portal's values; foreign values stay.

    `wanted`: the certificates senders should find (signing-only ones are left out whatever
    the caller says). `own`: fingerprints of every certificate of this person, and
    `elsewhere`: DNs where earlier attempts wrote them; on those entries (other than the
    one `locator` finds now) the person's certificates are removed, and an entry that no
    longer exists there counts as clean. The current entry is written first, so a sender
    never finds the person without a certificate in between. `entry`: the current entry as a
    batch search just read it (with entry_attributes), saving the read here.
    """
    wanted = [w for w in wanted if encryption_capable(w.certificate)]
    config = client.config
    smime_attribute = config.smime_attribute if config.publish_smime_capable else None
    attributes = entry_attributes(config)
    plan_for = dict(
        issuers=issuers, certificate_attribute=config.certificate_attribute, smime_attribute=smime_attribute
    )

    def current(entry: DirectoryEntry) -> _Plan:
        return _plan(entry, wanted=wanted, removable=lambda other: issued_by(other, issuers), **plan_for)

    entry_dn, plan = _write(client, locator, attributes=attributes, planner=current, read=entry)
    outcome = SyncOutcome(
        entry_dn=entry_dn, changed=plan.changes, added=sorted(plan.added), removed=sorted(plan.removed)
    )

    own = set(own)
    here = _normalized_dn(entry_dn)

    def earlier(entry: DirectoryEntry) -> _Plan:
        return _plan(entry, wanted=[], removable=lambda other: fingerprint(other) in own, **plan_for)

    for dn in sorted(set(elsewhere)):
        if not dn or _normalized_dn(dn) == here:
            continue
        try:
            old_dn, old_plan = _write(client, EntryLocator(mail="", dn=dn), attributes=attributes, planner=earlier)
        except EntryNotFound:
            continue  # the old entry is gone: nothing of ours is left there
        if _normalized_dn(old_dn) == here:
            continue
        if old_plan.changes:
            outcome.changed = True
            outcome.cleaned.append(old_dn)
    return outcome


@dataclass
class PublishOutcome:
    entry_dn: str
    changed: bool = False


def publish_ca(client: DirectoryClient, *, dn: str, certificate_der: bytes, crl_der: bytes) -> PublishOutcome:
    """Make the CA entry `dn` carry exactly this CA certificate and this CRL.

    The entry must exist (the directory administrator creates it, e.g. with objectClass
    pkiCA); both attributes are replaced whole. What is there already is not written again.
    """
    config = client.config
    wanted = {config.ca_certificate_attribute: [certificate_der], config.crl_attribute: [crl_der]}
    entry = client.find_entry(EntryLocator(mail="", dn=dn), attributes=list(wanted))
    replace = {attribute: values for attribute, values in wanted.items() if entry.get(attribute) != values}
    if replace:
        client.modify_values(entry.dn, replace=replace)
    return PublishOutcome(entry_dn=entry.dn, changed=bool(replace))
