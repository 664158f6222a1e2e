"""Benchmarks of the key material: issuance and the PKCS#12 download, each against raw `cryptography`.

Issuance, raw: key generation + an S/MIME certificate signed by the same CA key + the CMS
EnvelopedData of the key to the recovery agent (AES-256) + the AES-GCM sealed pickup copy.
Portal: `certificate_request_create` + `certificate_request_approve` through the services
(in process, as without a broker: lint, escrow, pickup copy, audit chain, database).

PKCS#12, raw: `serialize_key_and_certificates` of a key already in memory, same format.
Portal: `pickup_copy_export` (the owner's download: unseal, PKCS#12, counted and audited).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .harness import Result, interleaved
from .world import PASSPHRASE, World

_CURVES = {"ec-p256": ec.SECP256R1, "ec-p384": ec.SECP384R1}
_PKCS12_ALGORITHMS = {
    "modern": (pkcs12.PBES.PBESv2SHA256AndAES256CBC, hashes.SHA256()),
    "compatible": (pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC, hashes.SHA1()),
}


def _generate(key_type: str):
    if key_type.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type.removeprefix("rsa-")))
    return ec.generate_private_key(_CURVES[key_type]())


def _ca_hash(ca_key):
    if isinstance(ca_key, ec.EllipticCurvePrivateKey) and ca_key.curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()


def raw_issue(world: World, key_type: str, index: int) -> None:
    raw = world.raw
    key = _generate(key_type)
    mailbox = f"raw{index}@example.org"
    now = datetime.now(timezone.utc)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=key_type.startswith("rsa-"),
        data_encipherment=False,
        key_agreement=not key_type.startswith("rsa-"),
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.EMAIL_ADDRESS, mailbox)]))
        .issuer_name(raw.ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(os.urandom(19), "big") >> 1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(mailbox)]), critical=False)
    )
    certificate = builder.sign(raw.ca_key, _ca_hash(raw.ca_key))
    key_der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(key_der)
        .add_recipient(raw.agent_certificate)
        .set_content_encryption_algorithm(algorithms.AES256)
        .encrypt(serialization.Encoding.DER, [])
    )
    AESGCM(raw.kek).encrypt(os.urandom(12), key_der, b"\x01pickup " + str(certificate.serial_number).encode())


def portal_issue(world: World, key_type: str) -> object:
    from enrollment.services.requests import certificate_request_approve, certificate_request_create

    user = world.new_employee()
    request = certificate_request_create(employee=user.employee, submitted_by=user, key_type=key_type)
    request = certificate_request_approve(request_id=request.pk, approver=world.approver)
    if request.state != "issued":
        raise RuntimeError(f"the portal did not issue: {request.state} {request.reason}")
    return request.certificate


def issuance(world: World, *, key_type: str, rounds: int, per_round: int) -> Result:
    result = interleaved(
        name=f"issuance_{key_type.replace('-', '_')}",
        work="keygen + sign + CMS + AES-GCM vs request + approve",
        raw=lambda index: raw_issue(world, key_type, index),
        portal=lambda index: portal_issue(world, key_type),
        rounds=rounds,
        per_round=per_round,
    )
    return result


def pkcs12_download(world: World, *, key_type: str, fmt: str, rounds: int, per_round: int) -> Result:
    from escrow.services.pickups import pickup_copy_export

    certificate = portal_issue(world, key_type)
    owner = certificate.employee.user
    # The raw side's key: the certificate's own, unsealed once here with plain AES-GCM.
    sealed = bytes(certificate.pickup.sealed_key)
    associated_data = sealed[:1] + f"smime-portal pickup {certificate.serial}".encode()
    key_der = AESGCM(world.raw.kek).decrypt(sealed[1:13], sealed[13:], associated_data)
    key = serialization.load_der_private_key(key_der, password=None)
    chain = [pkcs12.PKCS12Certificate(ca.certificate, None) for ca in certificate.issuer.chain()]
    key_cert_algorithm, mac_hash = _PKCS12_ALGORITHMS[fmt]

    def raw(index: int) -> None:
        encryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .key_cert_algorithm(key_cert_algorithm)
            .hmac_hash(mac_hash)
            .build(PASSPHRASE.encode())
        )
        pkcs12.serialize_key_and_certificates(b"bench", key, certificate.x509, chain, encryption)

    def portal(index: int) -> None:
        pickup_copy_export(actor=owner, serial=certificate.serial, passphrase=PASSPHRASE, fmt=fmt)

    result = interleaved(
        name=f"pkcs12_{fmt}_{key_type.replace('-', '_')}",
        work="PKCS#12 serialization vs pickup_copy_export",
        raw=raw,
        portal=portal,
        rounds=rounds,
        per_round=per_round,
    )
    return result
