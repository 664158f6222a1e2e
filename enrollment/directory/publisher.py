"""Publish and unpublish one certificate on a person's directory entry.

Pure decisions (which values to add, which to remove) plus the two operations on a
DirectoryClient. No Django. The rules:

- the certificate goes into the certificate attribute (userCertificate;binary, or
  userCertificate on AD) and, if configured, as a degenerate PKCS#7 (certificate and
  chain) into userSMIMECertificate;
- values this portal's CAs issued (signature checked against the CA certificates) for an
  older certificate are replaced; a value on the entry that is newer than the one being
  published wins, and the older one is reported as superseded instead of written;
- values anyone else put there (other CAs, self-signed) are never touched;
- publishing what is there already writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from .client import ConcurrentChange, DirectoryClient, DirectoryEntry, DirectoryError, EntryLocator


@dataclass
class PublishOutcome:
    entry_dn: str
    changed: bool = False
    # SHA-256 fingerprints (hex) of the portal's older certificates taken off the entry.
    replaced: list[str] = field(default_factory=list)
    # Set when the entry holds a newer certificate of this portal: nothing was written.
    superseded_by: str = ""


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


IssueOrder = Callable[[x509.Certificate], tuple]


def key_roles(certificate: x509.Certificate) -> frozenset[str]:
    """What the certificate's key is for: signing, encryption, or both (dual use).

    A newer certificate replaces an older one only when their roles overlap, so the two
    certificates of a separate signing/encryption pair stay on the entry side by side.
    """
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


def not_before_order(certificate: x509.Certificate) -> tuple:
    """The default issue order: notBefore (whole seconds), the serial number breaking ties."""
    return (certificate.not_valid_before_utc, certificate.serial_number)


@dataclass
class _Plan:
    add: dict[str, list[bytes]] = field(default_factory=dict)
    delete: dict[str, list[bytes]] = field(default_factory=dict)
    replace: dict[str, list[bytes]] = field(default_factory=dict)
    replaced: set[str] = field(default_factory=set)
    superseded_by: str = ""

    @property
    def changes(self) -> bool:
        return any(self.add.values()) or any(self.delete.values()) or bool(self.replace)


def _plan(
    entry: DirectoryEntry,
    *,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    issuers: Sequence[x509.Certificate],
    certificate_attribute: str,
    smime_attribute: str | None,
    present: bool,
    order: IssueOrder = not_before_order,
) -> _Plan:
    """What to change so that `certificate` is on the entry (present) or is not (absent)."""
    plan = _Plan()
    own_der = certificate.public_bytes(Encoding.DER)
    own_fingerprint = fingerprint(certificate)

    # The portal's other certificates on the entry, per attribute, with their values.
    theirs: dict[str, list[tuple[bytes, x509.Certificate]]] = {certificate_attribute: []}
    own_values: dict[str, list[bytes]] = {certificate_attribute: []}
    own_roles = key_roles(certificate)
    for value in entry.get(certificate_attribute):
        other = _load_certificate(value)
        if value == own_der:
            own_values[certificate_attribute].append(value)
        elif other is not None and issued_by(other, issuers) and key_roles(other) & own_roles:
            theirs[certificate_attribute].append((value, other))
    if smime_attribute:
        theirs[smime_attribute], own_values[smime_attribute] = [], []
        for value in entry.get(smime_attribute):
            leaf = _smime_leaf(value, issuers)
            if leaf is not None and fingerprint(leaf) == own_fingerprint:
                own_values[smime_attribute].append(value)
            elif leaf is not None and key_roles(leaf) & own_roles:
                theirs[smime_attribute].append((value, leaf))

    keep_own = present
    if present:
        own_rank = order(certificate)
        newer = [other for values in theirs.values() for _, other in values if order(other) > own_rank]
        if newer:
            newest = max(newer, key=order)
            plan.superseded_by = fingerprint(newest)
            keep_own = False

    wanted_own = {certificate_attribute: own_der}
    if smime_attribute:
        wanted_own[smime_attribute] = smime_value(certificate, chain)
    for attribute, own in own_values.items():
        remove = [] if keep_own else list(own)
        if keep_own:
            # Replace the portal's older certificates (all others are older, or we would not keep ours).
            for value, other in theirs[attribute]:
                remove.append(value)
                plan.replaced.add(fingerprint(other))
            # A stale encoding of our own value (e.g. a chain that changed) is rewritten.
            remove.extend(value for value in own if value != wanted_own[attribute])
        add = [wanted_own[attribute]] if keep_own and wanted_own[attribute] not in own else []
        if attribute == smime_attribute:
            if remove or add:
                current = entry.get(attribute)
                plan.replace[attribute] = [value for value in current if value not in remove] + add
        else:
            if remove:
                plan.delete[attribute] = remove
            if add:
                plan.add[attribute] = add
    return plan


def _apply(
    client: DirectoryClient,
    locator: EntryLocator,
    *,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    issuers: Sequence[x509.Certificate],
    present: bool,
    order: IssueOrder = not_before_order,
) -> PublishOutcome:
    config = client.config
    smime_attribute = config.smime_attribute if config.publish_smime_capable else None
    attributes = [config.certificate_attribute] + ([smime_attribute] if smime_attribute else [])
    for _attempt in range(3):
        entry = client.find_entry(locator, attributes=attributes)
        plan = _plan(
            entry,
            certificate=certificate,
            chain=chain,
            issuers=issuers,
            certificate_attribute=config.certificate_attribute,
            smime_attribute=smime_attribute,
            present=present,
            order=order,
        )
        if not plan.changes:
            return PublishOutcome(entry_dn=entry.dn, superseded_by=plan.superseded_by)
        try:
            client.modify_values(entry.dn, add=plan.add, delete=plan.delete, replace=plan.replace)
        except ConcurrentChange:
            continue  # someone changed the entry between our read and write: read again
        return PublishOutcome(
            entry_dn=entry.dn, changed=True, replaced=sorted(plan.replaced), superseded_by=plan.superseded_by
        )
    raise DirectoryError(f"{entry.dn} kept changing while the portal wrote to it; it tries again later.")


def publish(
    client: DirectoryClient,
    locator: EntryLocator,
    *,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    issuers: Sequence[x509.Certificate],
    order: IssueOrder = not_before_order,
) -> PublishOutcome:
    """Put `certificate` on the entry, replacing older ones of this portal; foreign values stay.

    `order` ranks the portal's certificates by issuance (a newer one on the entry wins).
    """
    return _apply(client, locator, certificate=certificate, chain=chain, issuers=issuers, present=True, order=order)


def unpublish(
    client: DirectoryClient,
    locator: EntryLocator,
    *,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    issuers: Sequence[x509.Certificate],
    order: IssueOrder = not_before_order,
) -> PublishOutcome:
    """Take `certificate` (and its userSMIMECertificate value) off the entry; nothing else."""
    return _apply(client, locator, certificate=certificate, chain=chain, issuers=issuers, present=False, order=order)


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
