"""Apple configuration profiles (.mobileconfig): the identity and the CA chain in one install.

Pure (no Django). The layout follows Apple's Configuration Profile Reference:
- the top level is a `Configuration` payload (PayloadIdentifier, PayloadUUID, PayloadVersion 1,
  PayloadDisplayName, PayloadOrganization) whose PayloadContent lists the payloads below;
- `com.apple.security.pkcs12`: the identity; PayloadContent is the PKCS#12 data and
  `Password` is optional (without it the device asks for the passphrase when installing);
- `com.apple.security.root`: the root CA certificate (DER);
- `com.apple.security.pkcs1`: each intermediate (issuing) CA certificate (DER).

The PKCS#12 inside must be the "compatible" one (3DES, SHA-1 MAC): the importers of many iOS
and macOS releases read nothing else. The profile is unsigned: the device shows it as
"Unverified" (signing it with a portal certificate, CMS SignedData, is a later step).
Identifiers and UUIDs derive from `identifier`, so a profile downloaded again for the same
certificate replaces the installed one instead of adding a second.
"""

from __future__ import annotations

import plistlib
import uuid
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

CONTENT_TYPE = "application/x-apple-aspen-config"

_NAMESPACE = uuid.UUID("6f1d6a4e-5b0e-4f47-9a55-2c0b1f0a6a11")  # the portal's own uuid5 namespace


def _uuid(identifier: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, identifier)).upper()


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()


def _certificate_payload(*, payload_type: str, certificate: x509.Certificate, identifier: str, kind: str) -> dict:
    name = _common_name(certificate)
    return {
        "PayloadType": payload_type,
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": _uuid(identifier),
        "PayloadDisplayName": name,
        "PayloadDescription": f"{kind}: {name}",
        "PayloadCertificateFileName": f"{name}.cer",
        "PayloadContent": certificate.public_bytes(Encoding.DER),
    }


def mobileconfig_profile(
    *,
    pkcs12_der: bytes,
    chain: Sequence[x509.Certificate],
    identifier: str,
    display_name: str,
    organization: str,
    description: str,
    pkcs12_filename: str,
    password: str | None = None,
) -> bytes:
    """An unsigned XML .mobileconfig with the identity (PKCS#12) and the CA `chain` (issuing CA first, root last).

    `password` goes into the profile only when given: then the device does not ask, and the
    file is as secret as the key itself.
    """
    if not identifier or any(c.isspace() for c in identifier):
        raise ValueError("the profile identifier must be a non-empty reverse-DNS name without spaces")
    if not chain:
        raise ValueError("the chain must hold at least the root CA")
    root = chain[-1]
    if root.subject != root.issuer:
        raise ValueError("the last certificate of the chain is not a (self-signed) root CA")
    identity = {
        "PayloadType": "com.apple.security.pkcs12",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{identifier}.identity",
        "PayloadUUID": _uuid(f"{identifier}.identity"),
        "PayloadDisplayName": display_name,
        "PayloadDescription": "Your private key and S/MIME certificate",
        "PayloadCertificateFileName": pkcs12_filename,
        "PayloadContent": pkcs12_der,
    }
    if password is not None:
        identity["Password"] = password
    payloads = [identity]
    for position, intermediate in enumerate(chain[:-1]):
        payloads.append(
            _certificate_payload(
                payload_type="com.apple.security.pkcs1",
                certificate=intermediate,
                identifier=f"{identifier}.ca.{position}",
                kind="Intermediate CA",
            )
        )
    payloads.append(
        _certificate_payload(
            payload_type="com.apple.security.root", certificate=root, identifier=f"{identifier}.root", kind="Root CA"
        )
    )
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": _uuid(identifier),
        "PayloadDisplayName": display_name,
        "PayloadOrganization": organization,
        "PayloadDescription": description,
        "PayloadRemovalDisallowed": False,
        "PayloadContent": payloads,
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=True)
