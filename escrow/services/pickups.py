"""Pickups: the sealed copies of private keys that wait for a download.

Two kinds share one sealed-key path (AES-GCM under PORTAL_PICKUP_KEK, each blob bound to
its row by the associated data): the employee's own copy of a newly issued key
(PickupCopy, one per certificate) and a recovered key for a recovery's recipient
(RecoveryPickup). Both expire; the purge job deletes what has.

The employee's copy is never lost to a wrong format: it can be downloaded again, in any
format, while its window is open. A key that is escrowed (dual-use, encryption) keeps the
whole window. A signing-only key (key separation) is escrowed nowhere, so the portal's copy
should not outlive its need: its first download shortens the window to
SIGNING_KEY_REDOWNLOAD_HOURS (never lengthens it), time enough to try the other format or
another device, after which the copy is gone for good.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from audit.events import AuditAction
from audit.services import audit_record
from core.exceptions import ConfigurationError, InvalidState, NotFound, PickupUnavailable
from enrollment import selectors
from enrollment.bundles import (
    DOWNLOAD_FORMATS,
    Download,
    certificate_download,
    certificate_pkcs12,
    pkcs12_check_format,
    pkcs12_check_passphrase,
)
from enrollment.models import Certificate
from enrollment.pki.keys import PrivateKey, private_key_to_der
from enrollment.pki.serials import normalize_serial

from .. import sealing
from ..models import EscrowRecord, PickupCopy, RecoveryPickup, RecoveryRequest

# After its first download, a signing-only key stays this long at most (see the module's doc).
SIGNING_KEY_REDOWNLOAD_HOURS = 72

# --- The sealed-key path --------------------------------------------------------------------------


def _kek() -> bytes:
    return sealing.derive_kek(settings.PORTAL_PICKUP_KEK)


def _seal_key(*, key, associated_data: bytes) -> bytes:
    return sealing.seal(plaintext=private_key_to_der(key), kek=_kek(), associated_data=associated_data)


def _unseal_key(*, sealed: bytes, associated_data: bytes, what: str):
    try:
        key_der = sealing.unseal(sealed=sealed, kek=_kek(), associated_data=associated_data)
    except sealing.SealError:
        raise ConfigurationError(
            f"{what} cannot be decrypted: the pickup key-encryption key (PORTAL_PICKUP_KEK) has changed."
        ) from None
    return _own_key_from_der(key_der)


def _own_key_from_der(key_der: bytes) -> PrivateKey:
    """A key this portal generated and sealed, loaded without OpenSSL's RSA key check.

    The check (RSA_check_key: primality of p and q, the CRT values) costs 96 ms for an
    RSA-3072 key and 280 ms for RSA-4096, on every download. It guards against malformed
    keys from outside; these bytes are not from outside: `sealing.unseal` has verified the
    AES-GCM tag under PORTAL_PICKUP_KEK, so they are exactly the DER that `_seal_key` wrote
    from a key that OpenSSL generated (and checked) at issuance or that the recovery
    decrypted from the CMS escrow of such a key. Anyone who could forge them holds the KEK,
    and so every pickup copy anyway.
    """
    key = serialization.load_der_private_key(key_der, password=None, unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ConfigurationError(f"A sealed key of an unsupported type {type(key).__name__}.")
    return key


def _issued_associated_data(certificate) -> bytes:
    # Binds a sealed key to its certificate: a copy moved to another row will not open.
    return f"smime-portal pickup {certificate.serial}".encode()


def _recovered_associated_data(*, request_id: int, serial: str, recipient_id: int) -> bytes:
    # Binds a sealed key to its request, certificate and recipient: moved elsewhere it won't open.
    return f"smime-portal recovery {request_id} {serial} {recipient_id}".encode()


# --- The employee's copy of a newly issued key ----------------------------------------------------


@transaction.atomic
def pickup_copy_create(*, certificate, private_key) -> PickupCopy:
    return PickupCopy.objects.create(
        certificate=certificate,
        sealed_key=_seal_key(key=private_key, associated_data=_issued_associated_data(certificate)),
        expires_at=timezone.now() + timedelta(days=settings.PORTAL_PICKUP_DAYS),
    )


def pickup_unavailable_message(*, certificate) -> str:
    """Why a key cannot be downloaded (any more), and what the employee can do: never a recovery that cannot be."""
    if EscrowRecord.objects.filter(certificate=certificate).exists():
        return (
            f"The portal no longer holds a copy of the key of certificate {certificate.serial} for download "
            "(its download window has closed). The key is escrowed: if you no longer have it, ask for a "
            "key recovery on the Key recovery page."
        )
    kind = "signing-only key (key separation)" if certificate.usage == Certificate.Usage.SIGNING else "key"
    return (
        f"The portal no longer holds a copy of the key of certificate {certificate.serial} for download "
        f"(its download window has closed). It is a {kind} and was never escrowed, so no one can recover it. If you no "
        "longer have it, revoke this certificate and request a new one."
    )


def _open_pickup(certificate) -> PickupCopy:
    pickup = PickupCopy.objects.select_for_update().filter(certificate=certificate).first()
    if pickup is None or pickup.expires_at <= timezone.now():
        raise PickupUnavailable(pickup_unavailable_message(certificate=certificate))
    return pickup


def _unseal_pickup(pickup: PickupCopy, certificate):
    return _unseal_key(
        sealed=bytes(pickup.sealed_key),
        associated_data=_issued_associated_data(certificate),
        what="The pickup copy",
    )


def _count_download(pickup: PickupCopy) -> None:
    pickup.download_count += 1
    pickup.last_downloaded_at = timezone.now()
    pickup.save(update_fields=["download_count", "last_downloaded_at", "expires_at"])


@transaction.atomic
def pickup_copy_open(*, certificate):
    """The private key of a certificate whose pickup window is open; counts the download."""
    pickup = _open_pickup(certificate)
    key = _unseal_pickup(pickup, certificate)
    _count_download(pickup)
    return key


@sensitive_variables("passphrase", "key")
def pickup_copy_export(
    *, actor, serial: str, passphrase: str, fmt: str, include_passphrase: bool = False
) -> tuple[Certificate, Download]:
    """The owner's key, certificate and chain as a file in one of bundles.DOWNLOAD_FORMATS,
    as often as the window allows (a signing-only key's window shortens at its first download).

    The key is unsealed and the file built before the transaction that counts and audits the
    download, not in it: on SQLite a writing transaction holds the database's one write lock
    (BEGIN IMMEDIATE), and 20 downloads queued on each other's PKCS#12 builds (issue 13). That
    short transaction locks the copy and checks it again, so a copy destroyed meanwhile (a
    revocation, the purge) or whose window closed is refused and the file is thrown away: a
    download is handed out only if it is counted, before any revocation that follows it.
    """
    certificate = selectors.certificate_of_owner(user=actor, serial=serial)
    pkcs12_check_passphrase(passphrase)
    pkcs12_check_format(fmt, choices=DOWNLOAD_FORMATS)
    if certificate.status != Certificate.Status.VALID:
        raise InvalidState(f"The certificate {certificate.serial} is {certificate.status}.")
    pickup = (
        PickupCopy.objects.filter(certificate=certificate)
        .annotate(escrowed=Exists(EscrowRecord.objects.filter(certificate=OuterRef("certificate_id"))))
        .order_by()
        .first()
    )
    if pickup is None or pickup.expires_at <= timezone.now():
        raise PickupUnavailable(pickup_unavailable_message(certificate=certificate))
    key = _unseal_pickup(pickup, certificate)
    download = certificate_download(
        certificate=certificate, key=key, passphrase=passphrase, fmt=fmt, include_passphrase=include_passphrase
    )
    _download_record(
        certificate=certificate, actor=actor, pickup_id=pickup.pk, escrowed=pickup.escrowed, fmt=fmt,
        passphrase_in_profile=bool(include_passphrase and fmt == "mobileconfig"),
    )  # fmt: skip
    return certificate, download


@transaction.atomic
def _download_record(*, certificate, actor, pickup_id: int, escrowed: bool, fmt: str, passphrase_in_profile: bool):
    pickup = PickupCopy.objects.select_for_update().defer("sealed_key").filter(pk=pickup_id).first()
    if pickup is None or pickup.expires_at <= timezone.now():
        raise PickupUnavailable(pickup_unavailable_message(certificate=certificate))
    if not escrowed:
        pickup.expires_at = min(pickup.expires_at, timezone.now() + timedelta(hours=SIGNING_KEY_REDOWNLOAD_HOURS))
    _count_download(pickup)
    audit_record(
        action=AuditAction.CERTIFICATE_PKCS12_DOWNLOADED,
        actor=actor,
        obj=certificate,
        details={
            "format": fmt,
            "passphrase_in_profile": passphrase_in_profile,
            "download": pickup.download_count,
            "key_escrowed": escrowed,
            "pickup_until": pickup.expires_at.isoformat(),
        },
    )


def pickup_copy_destroy(*, certificate) -> None:
    """Delete the certificate's pickup copy, if any (revoked, or a signing key downloaded)."""
    PickupCopy.objects.filter(certificate=certificate).delete()


@transaction.atomic
def pickup_copies_purge_expired() -> int:
    """Delete expired pickup copies and wipe expired recovered keys; returns how many.

    A recovered key's row stays (who received what, downloads); only its sealed key goes.
    """
    now = timezone.now()
    deleted, _ = PickupCopy.objects.filter(expires_at__lte=now).delete()
    wiped = RecoveryPickup.objects.filter(expires_at__lte=now).exclude(sealed_key=b"").update(sealed_key=b"")
    return deleted + wiped


# --- Recovered keys for a recovery's recipient ----------------------------------------------------


def recovered_keys_seal(*, request: RecoveryRequest, keys) -> datetime:
    """Seal each (certificate, key) of a completed recovery for its recipient; returns the expiry time."""
    expires_at = timezone.now() + timedelta(days=settings.PORTAL_PICKUP_DAYS)
    for certificate, key in keys:
        RecoveryPickup.objects.create(
            request=request,
            certificate=certificate,
            recipient=request.recipient,
            sealed_key=_seal_key(
                key=key,
                associated_data=_recovered_associated_data(
                    request_id=request.pk, serial=certificate.serial, recipient_id=request.recipient_id
                ),
            ),
            expires_at=expires_at,
        )
    return expires_at


def _completed_request_of_recipient(*, user, request_id: int) -> RecoveryRequest:
    request = (
        RecoveryRequest.objects.select_related("employee__user", "certificate")
        .filter(pk=request_id, recipient=user)
        .first()
    )
    if request is None:
        # Not the recipient: whether the request exists is none of their business here.
        raise NotFound(f"There is no recovered key for you under request #{request_id}.")
    if request.status != RecoveryRequest.Status.COMPLETED:
        raise InvalidState(f"Recovery request #{request.pk} is {request.status}, not completed.")
    return request


def _unseal(pickup: RecoveryPickup):
    if pickup.expires_at <= timezone.now():
        raise PickupUnavailable(
            f"The recovered key of certificate {pickup.certificate.serial} is no longer available "
            f"(the pickup closed on {pickup.expires_at:%Y-%m-%d}). A new recovery request is needed."
        )
    return _unseal_key(
        sealed=bytes(pickup.sealed_key),
        associated_data=_recovered_associated_data(
            request_id=pickup.request_id, serial=pickup.certificate.serial, recipient_id=pickup.recipient_id
        ),
        what="The recovered key",
    )


def _bundle(pickup: RecoveryPickup, key, *, passphrase: str, fmt: str) -> bytes:
    return certificate_pkcs12(certificate=pickup.certificate, key=key, passphrase=passphrase, fmt=fmt, recovered=True)


def _count_downloads(pickups: list[RecoveryPickup]) -> None:
    now = timezone.now()
    for pickup in pickups:
        pickup.download_count += 1
        pickup.last_downloaded_at = now
        pickup.save(update_fields=["download_count", "last_downloaded_at"])


@transaction.atomic
@sensitive_variables("passphrase", "key")
def recovery_pkcs12_export(
    *, user, request_id: int, passphrase: str, fmt: str = "modern", serial: str = ""
) -> tuple[str, bytes]:
    """(file name, PKCS#12) of one recovered key, for the request's recipient only.

    A request covering several keys needs `serial`; `key_history_pkcs12_export` gives all.
    """
    request = _completed_request_of_recipient(user=user, request_id=request_id)
    pkcs12_check_passphrase(passphrase)
    pkcs12_check_format(fmt)
    pickups = request.pickups.select_for_update(of=("self",)).select_related(
        "certificate__employee__user", "certificate__issuer"
    )
    serial = normalize_serial(serial)
    if serial:
        pickups = pickups.filter(certificate__serial=serial)
    pickups = list(pickups.order_by("certificate__not_before", "pk"))
    if not pickups:
        raise NotFound(f"Recovery request #{request.pk} holds no recovered key of certificate {serial}.")
    if len(pickups) > 1:
        raise ValidationError(
            {
                "certificate": f"Recovery request #{request.pk} holds {len(pickups)} keys "
                f"({', '.join(p.certificate.serial for p in pickups)}): name one, or download the key history."
            }
        )
    pickup = pickups[0]
    bundle = _bundle(pickup, _unseal(pickup), passphrase=passphrase, fmt=fmt)
    _count_downloads(pickups)
    audit_record(
        action=AuditAction.RECOVERY_DOWNLOADED,
        actor=user,
        obj=request,
        details={"certificates": [pickup.certificate.serial], "format": fmt, "bundle": "pkcs12"},
    )
    return f"{pickup.certificate.mailbox}-{pickup.certificate.serial}.p12", bundle


@transaction.atomic
@sensitive_variables("passphrase", "key")
def key_history_pkcs12_export(*, user, request_id: int, passphrase: str, fmt: str = "modern") -> tuple[str, bytes]:
    """(file name, ZIP) with one PKCS#12 per recovered key of a completed request: the
    employee's key history, to read old mail. Same passphrase for every file."""
    request = _completed_request_of_recipient(user=user, request_id=request_id)
    pkcs12_check_passphrase(passphrase)
    pkcs12_check_format(fmt)
    pickups = list(
        request.pickups.select_for_update(of=("self",))
        .select_related("certificate__employee__user", "certificate__issuer")
        .order_by("certificate__not_before", "pk")
    )
    if not pickups:
        raise NotFound(f"Recovery request #{request.pk} holds no recovered key.")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for pickup in pickups:
            certificate = pickup.certificate
            name = f"{certificate.not_before:%Y-%m-%d}-{certificate.serial}.p12"
            archive.writestr(name, _bundle(pickup, _unseal(pickup), passphrase=passphrase, fmt=fmt))
    _count_downloads(pickups)
    serials = [pickup.certificate.serial for pickup in pickups]
    audit_record(
        action=AuditAction.RECOVERY_DOWNLOADED,
        actor=user,
        obj=request,
        details={"certificates": serials, "format": fmt, "bundle": "key-history"},
    )
    return f"{request.employee.mail}-key-history.zip", buffer.getvalue()
