"""Key escrow as CMS EnvelopedData (RFC 5652) addressed to key recovery agent certificates.

Plain CMS on purpose: an agent can recover a key without the portal, e.g.
`openssl cms -decrypt -inform DER -in record.der -recip agent.pem -inkey agent.key`.
Pure crypto, no Django.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.error import PyAsn1Error
from pyasn1_alt_modules import rfc5280, rfc5652

# Binary: the payload is a DER key, not text; no MIME canonicalisation (\n -> \r\n).
_ENCRYPT_OPTIONS = [pkcs7.PKCS7Options.Binary]
# Decryption only knows `Text` (strip MIME headers); without it the bytes come back as-is.
_DECRYPT_OPTIONS: list[pkcs7.PKCS7Options] = []


def envelope(*, data: bytes, recipients: Sequence[x509.Certificate]) -> bytes:
    """EnvelopedData (DER) of `data`, AES-256-CBC, decryptable by each recipient's RSA key."""
    if not recipients:
        raise ValueError("an escrow envelope needs at least one recipient")
    builder = pkcs7.PKCS7EnvelopeBuilder().set_data(data)
    for certificate in recipients:
        if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
            raise ValueError(
                f"the recipient {certificate.subject.rfc4514_string()} does not have an RSA key "
                "(CMS key transport needs RSA)"
            )
        builder = builder.add_recipient(certificate)
    # The default is AES-128-CBC; the escrowed keys deserve the stronger cipher.
    builder = builder.set_content_encryption_algorithm(algorithms.AES256)
    return builder.encrypt(serialization.Encoding.DER, _ENCRYPT_OPTIONS)


def open_envelope(
    *, envelope_der: bytes, certificate: x509.Certificate, private_key: rsa.RSAPrivateKey
) -> bytes:
    """Decrypt with one agent's certificate and key (ValueError if it is not theirs)."""
    return pkcs7.pkcs7_decrypt_der(envelope_der, certificate, private_key, _DECRYPT_OPTIONS)


def _name_to_rfc4514(name: rfc5280.Name) -> str:
    """RFC 4514 string formatted like cryptography's `Name.rfc4514_string()`."""
    try:
        rdns = []
        for rdn in name["rdnSequence"]:
            attributes = []
            for atv in rdn:
                value, _ = der_decoder.decode(atv["value"])
                attributes.append(
                    x509.NameAttribute(x509.ObjectIdentifier(str(atv["type"])), str(value))
                )
            rdns.append(x509.RelativeDistinguishedName(attributes))
        return x509.Name(rdns).rfc4514_string()
    except (PyAsn1Error, ValueError, TypeError):
        # Not a name cryptography would build (odd string types): show it raw, still readable.
        return ",".join(
            "+".join(f"{atv['type']}=#{bytes(atv['value']).hex()}" for atv in rdn)
            for rdn in reversed(list(name["rdnSequence"]))
        )


def envelope_recipient_serials(envelope_der: bytes) -> list[tuple[str, int]]:
    """(issuer RFC 4514 string, serial number) of each recipient, in envelope order
    (a DER SET OF, so sorted by encoding rather than by the order given to `envelope`).

    For auditors: which agent certificates can open a record, without decrypting it.
    """
    try:
        content_info, rest = der_decoder.decode(envelope_der, asn1Spec=rfc5652.ContentInfo())
        if rest:
            raise ValueError("trailing data after the CMS structure")
        if content_info["contentType"] != rfc5652.id_envelopedData:
            raise ValueError(f"not CMS EnvelopedData but {content_info['contentType']}")
        enveloped, _ = der_decoder.decode(content_info["content"], asn1Spec=rfc5652.EnvelopedData())
    except PyAsn1Error as exc:
        # pyasn1's messages dump whole schemas; keep ours short.
        raise ValueError("not a DER CMS EnvelopedData structure") from exc

    recipients: list[tuple[str, int]] = []
    for recipient_info in enveloped["recipientInfos"]:
        if recipient_info.getName() != "ktri":
            raise ValueError(f"unsupported recipient info {recipient_info.getName()}")
        rid = recipient_info["ktri"]["rid"]
        if rid.getName() != "issuerAndSerialNumber":
            raise ValueError("recipient identified by subject key identifier, not issuer/serial")
        issuer_and_serial = rid["issuerAndSerialNumber"]
        recipients.append(
            (_name_to_rfc4514(issuer_and_serial["issuer"]), int(issuer_and_serial["serialNumber"]))
        )
    return recipients
