"""S/MIME subscriber certificate profiles (CA/B Forum S/MIME Baseline Requirements, strict).

Builds complete, unsigned `x509.CertificateBuilder`s; signing happens in a key backend so the
same builder can be linted first (see `lint.lint_before_signing`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from iso3166 import countries_by_alpha2  # a pkilint dependency; the same list pkilint checks

from .keys import PublicKey
from .names import name_problem

# RFC 4514 strings name these attributes by OID only; people read names (the openssl spelling).
_READABLE_ATTRIBUTE_NAMES = {
    NameOID.GIVEN_NAME: "GN",
    NameOID.SURNAME: "SN",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
    NameOID.PSEUDONYM: "pseudonym",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.TITLE: "title",
}


def name_text(name: x509.Name) -> str:
    """An RFC 4514 string of `name` with readable attribute names where RFC 4514 has none."""
    return name.rfc4514_string(_READABLE_ATTRIBUTE_NAMES)

CERTIFICATE_TYPES: dict[str, str] = {
    "sponsor-strict": "Sponsor-validated (strict)",
    "mailbox-strict": "Mailbox-validated (strict)",
}

POLICY_OIDS: dict[str, x509.ObjectIdentifier] = {
    "sponsor-strict": x509.ObjectIdentifier("2.23.140.1.5.3.3"),
    "mailbox-strict": x509.ObjectIdentifier("2.23.140.1.5.1.3"),
}

KEY_USAGES = ("dual", "signing", "encryption")

# Key separation issues two certificates to one person. NSS keeps one nickname per subject (the
# second import of the same subject takes the first one's nickname, whatever the PKCS#12 friendly
# name), so the two must differ in the subject: subject:serialNumber, which SBR 7.1.4.2.2 (i)
# allows in every sponsor- and mailbox-validated profile "to identify and/or to disambiguate the
# Subscriber". A dual-use certificate has none.
SPLIT_PAIR_SERIAL_NUMBERS: dict[str, str] = {"signing": "signing", "encryption": "encryption"}

MAX_VALIDITY_DAYS = 825  # SBR 6.3.2 for strict and multipurpose

_MAX_SERIAL = 2**159  # positive and at most 20 octets in DER (RFC 5280 4.1.2.2)

# Registration schemes of SBR 7.1.4.2.2 (d), or a two-letter jurisdiction scheme + ":".
_ORG_ID_RE = re.compile(
    r"^(?P<scheme>VAT|NTR|PSD|LEI|GOV|INT|[A-Z]{2}:)(?P<country>[A-Z]{2})"
    r"(\+(?P<sp>[A-Z0-9]{1,3}))?(-(?P<reference>.+))?$"
)
_GLOBAL_SCHEME_COUNTRY = "XG"  # LEI and INT identifiers are not tied to one country

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART_RE = re.compile(rf"^{_ATEXT}(\.{_ATEXT})*$")
_DOMAIN_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class Subscriber:
    mailbox: str
    given_name: str = ""
    surname: str = ""


@dataclass(frozen=True)
class Organization:
    name: str
    organization_identifier: str  # e.g. "NTRUS+CA-1234567" (SBR 7.1.4.2.2 d)
    country: str  # ISO 3166-1 alpha-2


@dataclass(frozen=True)
class IssuerInfo:
    certificate: x509.Certificate
    crl_url: str
    ca_issuers_url: str
    ocsp_url: str | None = None


def validate_mailbox(mailbox: str) -> str:
    """Return the mailbox with a lower-case domain, or raise ValueError.

    Deliberately narrower than RFC 5321: ASCII dot-atom local part, DNS host name domain, an
    internationalized domain in A-labels (RFC 9549; names.mailbox_clean converts). SmtpUTF8Mailbox
    otherNames (RFC 8398) are not issued.
    """
    value = mailbox.strip() if isinstance(mailbox, str) else ""
    if not value:
        raise ValueError("the e-mail address is empty")
    if not value.isascii():
        if value.rpartition("@")[0].isascii():
            raise ValueError("the e-mail address has a non-ASCII domain: give it in A-labels (xn--...)")
        raise ValueError(
            "the e-mail address has a non-ASCII local part: internationalized mailboxes (SmtpUTF8Mailbox, "
            "RFC 8398) are not issued"
        )
    if any(c.isspace() for c in value):
        raise ValueError(f"the e-mail address {value!r} contains white space")
    if value.count("@") != 1:
        raise ValueError(f"the e-mail address {value!r} must contain exactly one '@'")
    local, domain = value.split("@")
    if not local or len(local) > 64 or not _LOCAL_PART_RE.match(local):
        raise ValueError(f"the e-mail address {value!r} has an invalid local part")
    domain = domain.lower()  # domains are case-insensitive; the local part is not
    labels = domain.split(".")
    if (
        len(labels) < 2
        or len(domain) > 253
        or not all(_DOMAIN_LABEL_RE.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValueError(f"the e-mail address {value!r} has an invalid domain")
    normalized = f"{local}@{domain}"
    if len(normalized) > 254:
        raise ValueError(f"the e-mail address {value!r} is longer than 254 characters")
    return normalized


def validate_organization(organization: Organization) -> None:
    """Raise ValueError unless the organization fields make a lintable subject."""
    if not organization.name.strip():
        raise ValueError("the organization name is empty")
    if problem := name_problem(organization.name, what="organization name"):
        raise ValueError(problem)
    if len(organization.name) > 64:
        raise ValueError("the organization name is longer than 64 characters")
    country = organization.country
    if len(country) != 2 or country != country.upper() or country not in countries_by_alpha2:
        raise ValueError(
            f"the country {country!r} is not an upper-case ISO 3166-1 alpha-2 code such as 'DE'"
        )
    match = _ORG_ID_RE.match(organization.organization_identifier)
    if match is None:
        raise ValueError(
            f"the organization identifier {organization.organization_identifier!r} is not of "
            "the form SCHEME + country [+ state] - reference, e.g. 'NTRUS+CA-1234567'"
        )
    org_id_country = match["country"]
    if org_id_country != _GLOBAL_SCHEME_COUNTRY and org_id_country != country:
        raise ValueError(
            f"the organization identifier country {org_id_country!r} does not match the "
            f"organization's country {country!r}"
        )


def _check_http_url(url: str, what: str) -> str:
    if not isinstance(url, str) or not url.startswith("http://") or len(url) <= len("http://"):
        # SBR 7.1.2.3: CRL and AIA URLs are plain http (no TLS chicken-and-egg).
        raise ValueError(f"the {what} URL must be an http:// URL, got {url!r}")
    return url


def authority_key_identifier(issuer_certificate: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """AKI with keyIdentifier only, copied from the issuer's SKI (byte-for-byte equal)."""
    try:
        ski = issuer_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        raise ValueError("the issuer certificate has no subjectKeyIdentifier") from None
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


def crl_distribution_points(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(_check_http_url(url, "CRL"))],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def authority_information_access(
    ca_issuers_url: str, ocsp_url: str | None = None
) -> x509.AuthorityInformationAccess:
    descriptions = []
    if ocsp_url:
        descriptions.append(
            x509.AccessDescription(
                x509.AuthorityInformationAccessOID.OCSP,
                x509.UniformResourceIdentifier(_check_http_url(ocsp_url, "OCSP")),
            )
        )
    descriptions.append(
        x509.AccessDescription(
            x509.AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier(_check_http_url(ca_issuers_url, "CA issuers")),
        )
    )
    return x509.AuthorityInformationAccess(descriptions)


def validity_window(not_before: datetime, validity_days: int) -> tuple[datetime, datetime]:
    if not_before.tzinfo is None or not_before.utcoffset() is None:
        raise ValueError("not_before must be a timezone-aware datetime")
    if validity_days < 1:
        raise ValueError("the validity must be at least one day")
    # notAfter is inclusive (RFC 5280 4.1.2.5): minus one second gives exactly N days.
    return not_before, not_before + timedelta(days=validity_days) - timedelta(seconds=1)


def _key_usage(public_key: PublicKey, usage: str) -> x509.KeyUsage:
    is_rsa = isinstance(public_key, rsa.RSAPublicKey)
    digital_signature = usage in ("dual", "signing")
    content_commitment = usage == "signing"
    # RSA encrypts by key transport, ECC by key agreement (SBR 7.1.2.3 e).
    encipher = usage in ("dual", "encryption")
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=encipher and is_rsa,
        data_encipherment=False,
        key_agreement=encipher and not is_rsa,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _check_public_key(public_key: PublicKey) -> None:
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048 or public_key.key_size % 8:
            raise ValueError(f"RSA keys must be at least 2048 bits, got {public_key.key_size}")
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)):
            raise ValueError(f"the curve {public_key.curve.name} is not allowed for S/MIME")
    else:
        raise ValueError(f"unsupported public key type {type(public_key).__name__}")


def _split_pair_attributes(usage: str) -> list[x509.NameAttribute]:
    """subject:serialNumber telling a split pair's two certificates apart (SPLIT_PAIR_SERIAL_NUMBERS)."""
    value = SPLIT_PAIR_SERIAL_NUMBERS.get(usage)
    return [] if value is None else [x509.NameAttribute(NameOID.SERIAL_NUMBER, value)]


def _subject(
    certificate_type: str,
    subscriber: Subscriber,
    mailbox: str,
    organization: Organization,
    usage: str = "dual",
) -> x509.Name:
    if certificate_type == "mailbox-strict":
        # Mailbox-validated: the mailbox and a serialNumber only (SBR 7.1.4.2.3 a).
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, mailbox),
                x509.NameAttribute(NameOID.EMAIL_ADDRESS, mailbox),
                *_split_pair_attributes(usage),
            ]
        )
    given_name, surname = subscriber.given_name.strip(), subscriber.surname.strip()
    if not given_name or not surname:
        raise ValueError("a sponsor-validated certificate needs the given name and the surname")
    validate_organization(organization)
    common_name = f"{given_name} {surname}"
    for label, value in (("given name", given_name), ("surname", surname), ("name", common_name)):
        # Employee.clean_fields refuses these on the way in; this catches rows from before.
        if problem := name_problem(value, what=label):
            raise ValueError(problem)
        if len(value) > 64:
            raise ValueError(f"the {label} {value!r} is longer than 64 characters")
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, organization.country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization.name),
            x509.NameAttribute(
                NameOID.ORGANIZATION_IDENTIFIER, organization.organization_identifier
            ),
            x509.NameAttribute(NameOID.GIVEN_NAME, given_name),
            x509.NameAttribute(NameOID.SURNAME, surname),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, mailbox),
            *_split_pair_attributes(usage),
        ]
    )


def smime_certificate_builder(
    *,
    certificate_type: str,
    subscriber: Subscriber,
    organization: Organization,
    issuer: IssuerInfo,
    public_key: PublicKey,
    not_before: datetime,
    validity_days: int = 365,
    usage: str = "dual",
    serial_number: int | None = None,
) -> x509.CertificateBuilder:
    """A complete, unsigned builder for a strict S/MIME subscriber certificate."""
    if certificate_type not in CERTIFICATE_TYPES:
        raise ValueError(
            f"unknown certificate type {certificate_type!r}; "
            f"expected one of {', '.join(CERTIFICATE_TYPES)}"
        )
    if usage not in KEY_USAGES:
        raise ValueError(f"unknown key usage {usage!r}; expected one of {', '.join(KEY_USAGES)}")
    if validity_days > MAX_VALIDITY_DAYS:
        raise ValueError(
            f"the validity of {validity_days} days exceeds the S/MIME maximum of "
            f"{MAX_VALIDITY_DAYS} days"
        )
    _check_public_key(public_key)
    mailbox = validate_mailbox(subscriber.mailbox)
    subject = _subject(certificate_type, subscriber, mailbox, organization, usage)
    start, end = validity_window(not_before, validity_days)
    if serial_number is None:
        serial_number = x509.random_serial_number()
    elif not 0 < serial_number < _MAX_SERIAL:
        raise ValueError("the serial number must be positive and below 2**159")

    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject)
        .public_key(public_key)
        .serial_number(serial_number)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(_key_usage(public_key, usage), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(mailbox)]), critical=False)
        .add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(POLICY_OIDS[certificate_type], policy_qualifiers=None)]
            ),
            critical=False,
        )
        .add_extension(crl_distribution_points(issuer.crl_url), critical=False)
        .add_extension(
            authority_information_access(issuer.ca_issuers_url, issuer.ocsp_url), critical=False
        )
        .add_extension(authority_key_identifier(issuer.certificate), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
