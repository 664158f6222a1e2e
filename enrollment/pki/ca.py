"""CA certificate profiles: root, subordinate S/MIME issuing CA, key recovery agent."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .backends import signature_hash_for
from .keys import PrivateKey, PublicKey
from .profiles import (
    POLICY_OIDS,
    IssuerInfo,
    Organization,
    authority_information_access,
    authority_key_identifier,
    crl_distribution_points,
    validate_organization,
    validity_window,
)

# Microsoft szOID_KP_KEY_RECOVERY_AGENT
KEY_RECOVERY_AGENT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.21.6")

_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def ca_subject(*, common_name: str, organization: Organization) -> x509.Name:
    validate_organization(organization)
    if not common_name.strip() or len(common_name) > 64:
        raise ValueError("the CA common name must be 1 to 64 characters")
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, organization.country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization.name),
            x509.NameAttribute(
                NameOID.ORGANIZATION_IDENTIFIER, organization.organization_identifier
            ),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name.strip()),
        ]
    )


def _now() -> datetime:
    # Backdate a little so relying parties with a slow clock accept a fresh CA at once.
    return datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)


def _self_signed_builder(
    *, public_key: PublicKey, subject: x509.Name, validity_days: int, path_length: int | None
) -> x509.CertificateBuilder:
    start, end = validity_window(_now(), validity_days)
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(ski, critical=False)
        # Root profiles (SBR 7.1.2.1) recommend an AKI equal to the SKI; it also lets
        # path builders match a cross-certified copy of this CA.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    return builder


def root_certificate_builder(
    *, public_key: PublicKey, subject: x509.Name, validity_days: int = 7300
) -> x509.CertificateBuilder:
    """Self-signed root; no pathLenConstraint, no EKU, no policies (SBR 7.1.2.1).

    Unsigned, for a key the portal cannot hold (PKCS#11): sign it with the root's own backend.
    """
    return _self_signed_builder(
        public_key=public_key, subject=subject, validity_days=validity_days, path_length=None
    )


def create_root_certificate(
    *, key: PrivateKey, subject: x509.Name, validity_days: int = 7300
) -> x509.Certificate:
    """The root certificate of root_certificate_builder, signed with `key` in memory."""
    builder = root_certificate_builder(
        public_key=key.public_key(), subject=subject, validity_days=validity_days
    )
    return builder.sign(key, signature_hash_for(key))


def self_signed_issuing_builder(
    *, public_key: PublicKey, subject: x509.Name, validity_days: int = 3650
) -> x509.CertificateBuilder:
    """Single-tier option: a self-signed CA that issues subscriber certificates directly.

    pathLen 0 because it never certifies another CA. (Publicly trusted roots may not issue
    subscriber certificates; for an enterprise trust anchor it is a deliberate trade-off.)
    """
    return _self_signed_builder(
        public_key=public_key, subject=subject, validity_days=validity_days, path_length=0
    )


def self_signed_issuing_certificate(
    *, key: PrivateKey, subject: x509.Name, validity_days: int = 3650
) -> x509.Certificate:
    """The certificate of self_signed_issuing_builder, signed with `key` in memory."""
    builder = self_signed_issuing_builder(
        public_key=key.public_key(), subject=subject, validity_days=validity_days
    )
    return builder.sign(key, signature_hash_for(key))


def _issued_by(
    builder: x509.CertificateBuilder, public_key: PublicKey, issuer: IssuerInfo
) -> x509.CertificateBuilder:
    return (
        builder.issuer_name(issuer.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .add_extension(crl_distribution_points(issuer.crl_url), critical=False)
        .add_extension(
            authority_information_access(issuer.ca_issuers_url, issuer.ocsp_url), critical=False
        )
        .add_extension(authority_key_identifier(issuer.certificate), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _not_after_issuer(end: datetime, issuer: IssuerInfo) -> datetime:
    # A CA certificate outliving its issuer only produces confusing path validation errors.
    return min(end, issuer.certificate.not_valid_after_utc)


def issuing_ca_builder(
    *, public_key: PublicKey, subject: x509.Name, issuer: IssuerInfo, validity_days: int = 3650
) -> x509.CertificateBuilder:
    """Subordinate S/MIME issuing CA (SBR 7.1.2.2), to be signed with the parent's backend."""
    start, end = validity_window(_now(), validity_days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .not_valid_before(start)
        .not_valid_after(_not_after_issuer(end, issuer))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        # SBR 7.1.2.2 (g): S/MIME subordinate CAs carry emailProtection and nothing else.
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        # The reserved policy OIDs this CA issues under (explicit rather than anyPolicy, so
        # the chain documents exactly which certificate types may appear below it).
        .add_extension(
            x509.CertificatePolicies(
                [
                    x509.PolicyInformation(oid, policy_qualifiers=None)
                    for oid in POLICY_OIDS.values()
                ]
            ),
            critical=False,
        )
    )
    return _issued_by(builder, public_key, issuer)


def kra_certificate_builder(
    *, public_key: PublicKey, subject: x509.Name, issuer: IssuerInfo, validity_days: int = 1825
) -> x509.CertificateBuilder:
    """Key Recovery Agent certificate: an RSA key that receives escrowed keys via CMS.

    Not an SBR subscriber certificate. emailProtection sits beside the KRA purpose so that
    clients intersecting EKUs along the chain (Windows, NSS) still accept it for CMS under an
    issuing CA restricted to emailProtection.
    """
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("a key recovery agent needs an RSA key (CMS key transport)")
    if public_key.key_size < 2048:
        raise ValueError("a key recovery agent key must be at least 2048 bits")
    start, end = validity_window(_now(), validity_days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .not_valid_before(start)
        .not_valid_after(_not_after_issuer(end, issuer))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([KEY_RECOVERY_AGENT_OID, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
            critical=False,
        )
    )
    return _issued_by(builder, public_key, issuer)


def is_key_recovery_agent_certificate(cert: x509.Certificate) -> bool:
    """True for an end-entity RSA certificate with the Key Recovery Agent EKU."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    try:
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return False
    except x509.ExtensionNotFound:
        pass
    return KEY_RECOVERY_AGENT_OID in eku and isinstance(cert.public_key(), rsa.RSAPublicKey)


__all__ = [
    "KEY_RECOVERY_AGENT_OID",
    "ca_subject",
    "root_certificate_builder",
    "create_root_certificate",
    "self_signed_issuing_builder",
    "self_signed_issuing_certificate",
    "issuing_ca_builder",
    "kra_certificate_builder",
    "is_key_recovery_agent_certificate",
]
