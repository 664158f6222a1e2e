"""The CA key in an HSM: a key backend over PKCS#11 (python-pkcs11). No Django.

The key pair is generated inside the token (`pkcs11_generate_ca_key`) as a persistent object
that is sensitive and never extractable, so neither the portal nor anyone with the PIN can
read the private key out; the token signs, through `Pkcs11KeyBackend`, whatever
cryptography's builders would have signed (see external_signing for how).

A CA row names its key with an RFC 7512 PKCS#11 URI, `pkcs11:token=<token label>;object=<key
label>`; the module path and the user PIN come from the settings, never from the database.
Tokens are found by label, not slot number: slot numbers change when tokens are added (SoftHSM2
renumbers them on every initialization), labels do not.

One session per token and process, logged in once (PKCS#11 shares the login among a process's
sessions), used under one lock (a session runs one operation at a time). A session the module
lost (HSM restart, network HSM failover) is reopened once; after a fork the library is
initialized again, as PKCS#11 requires of a child process. A PIN the token refused is not
tried again in the process: HSMs lock the user PIN after a few wrong attempts.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, unquote

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from .backends import KeyBackendError, SignatureHash
from .external_signing import ExternalKeyBackend, digest_of
from .keys import KEY_TYPES, PublicKey

T = TypeVar("T")

_RSA_BITS = {"rsa-3072": 3072, "rsa-4096": 4096}
_EC_CURVES: dict[str, tuple[str, type[ec.EllipticCurve]]] = {
    "ec-p256": ("secp256r1", ec.SECP256R1),
    "ec-p384": ("secp384r1", ec.SECP384R1),
}
_RSA_MECHANISMS = {
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}
# Errors after which the session is gone but a new one may work.
_SESSION_LOST = (
    pkcs11.exceptions.SessionClosed,
    pkcs11.exceptions.SessionHandleInvalid,
    pkcs11.exceptions.DeviceRemoved,
    pkcs11.exceptions.TokenNotPresent,
    pkcs11.exceptions.UserNotLoggedIn,
    pkcs11.exceptions.ObjectHandleInvalid,
    pkcs11.exceptions.KeyHandleInvalid,
)


class Pkcs11Error(KeyBackendError):
    """The token cannot be reached or refuses (module, token label, PIN, key label)."""


@dataclass(frozen=True)
class Pkcs11KeyReference:
    """Where a CA key lives: token label and key label, as an RFC 7512 URI in the CA row."""

    token_label: str
    key_label: str

    def __post_init__(self) -> None:
        if not self.token_label or not self.key_label:
            raise ValueError("a PKCS#11 key reference needs a token label and a key label")

    @property
    def uri(self) -> str:
        return f"pkcs11:token={quote(self.token_label, safe='')};object={quote(self.key_label, safe='')}"

    @classmethod
    def from_uri(cls, uri: str) -> Pkcs11KeyReference:
        if not uri.startswith("pkcs11:"):
            raise ValueError(f"not a PKCS#11 URI: {uri!r}")
        attributes = dict(part.partition("=")[::2] for part in uri.removeprefix("pkcs11:").split(";") if part)
        try:
            return cls(unquote(attributes["token"]), unquote(attributes["object"]))
        except KeyError:
            raise ValueError(f"the PKCS#11 URI {uri!r} must name token and object") from None


def new_key_label(prefix: str) -> str:
    # A fresh label each time, like the key files: a key left by a rolled-back attempt never
    # blocks the next one (and is easy to spot and destroy in the token).
    return f"{prefix}-{secrets.token_hex(4)}"


# --- Sessions ------------------------------------------------------------------------------


class _TokenSession:
    def __init__(self, module_path: str, token_label: str, pin: str) -> None:
        self.pin = pin
        token = pkcs11.lib(module_path).get_token(token_label=token_label)
        self.session = token.open(rw=True, user_pin=pin)
        self.keys: dict[tuple[ObjectClass, str], Any] = {}

    def key(self, object_class: ObjectClass, label: str) -> Any:
        cached = self.keys.get((object_class, label))
        if cached is None:
            cached = self.keys[(object_class, label)] = self.session.get_key(object_class=object_class, label=label)
        return cached

    def close(self) -> None:
        try:
            self.session.close()
        except pkcs11.PKCS11Error:
            pass


_lock = threading.RLock()
_sessions: dict[tuple[str, str], _TokenSession] = {}
_sessions_pid = os.getpid()
# (module, token, SHA-256 of the PIN) the token refused: never tried again in this process.
# HSMs lock the user PIN after a few wrong attempts, and a PIN file with a typo would otherwise
# be tried on every request.
_refused_pins: set[tuple[str, str, str]] = set()


def _session(module_path: str, token_label: str, pin: str) -> _TokenSession:
    """The process's session with the token; call with `_lock` held."""
    global _sessions_pid
    if _sessions_pid != os.getpid():  # forked: the parent's sessions are not ours
        for loaded_module in {module for module, _ in _sessions}:
            pkcs11.lib(loaded_module).reinitialize()
        _sessions.clear()
        _sessions_pid = os.getpid()
    key = (module_path, token_label)
    session = _sessions.get(key)
    if session is not None and session.pin != pin:
        _sessions.pop(key).close()
        session = None
    if session is None:
        session = _sessions[key] = _TokenSession(module_path, token_label, pin)
    return session


def _with_session(
    module_path: str, token_label: str, pin: str, operation: Callable[[_TokenSession], T]
) -> T:
    """Run `operation` with the token's session, reopening a lost session once."""
    where = f"PKCS#11 token {token_label!r} ({module_path})"
    if not module_path:
        raise Pkcs11Error("no PKCS#11 module configured (PORTAL_PKCS11_MODULE)")
    if not os.path.exists(module_path):
        raise Pkcs11Error(f"the PKCS#11 module {module_path} does not exist")
    if not pin:
        raise Pkcs11Error(f"{where}: no user PIN configured (PORTAL_PKCS11_PIN or PORTAL_PKCS11_PIN_FILE)")
    pin_id = (module_path, token_label, hashlib.sha256(pin.encode()).hexdigest())
    with _lock:
        if pin_id in _refused_pins:
            raise Pkcs11Error(f"{where}: the user PIN was refused before; not trying it again until a restart")
        for attempt in (1, 2):
            try:
                return operation(_session(module_path, token_label, pin))
            except _SESSION_LOST as exc:
                _sessions.pop((module_path, token_label), None)
                if attempt == 2:
                    raise Pkcs11Error(f"{where}: {_describe(exc)}") from exc
            except (pkcs11.exceptions.PinIncorrect, pkcs11.exceptions.PinLocked, pkcs11.exceptions.PinExpired) as exc:
                _refused_pins.add(pin_id)
                reason = "is wrong" if isinstance(exc, pkcs11.exceptions.PinIncorrect) else "is locked or expired"
                raise Pkcs11Error(f"{where}: the user PIN {reason}") from exc
            except pkcs11.exceptions.NoSuchToken as exc:
                raise Pkcs11Error(f"{where}: no token with this label") from exc
            except pkcs11.PKCS11Error as exc:
                raise Pkcs11Error(f"{where}: {_describe(exc)}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _describe(exc: pkcs11.PKCS11Error) -> str:
    doc = (type(exc).__doc__ or "").strip().splitlines()
    detail = str(exc) or (doc[0] if doc else "")
    return f"{type(exc).__name__}{': ' + detail if detail else ''}"


def pkcs11_sessions_close() -> None:
    """Close every session (tests; before the token is reinitialized behind our back)."""
    with _lock:
        for session in _sessions.values():
            session.close()
        _sessions.clear()


# --- Keys ----------------------------------------------------------------------------------


def _public_key_of(public_object: Any) -> PublicKey:
    key_type = public_object[Attribute.KEY_TYPE]
    if key_type == KeyType.RSA:
        modulus = int.from_bytes(public_object[Attribute.MODULUS], "big")
        exponent = int.from_bytes(public_object[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    if key_type == KeyType.EC:
        parameters = bytes(public_object[Attribute.EC_PARAMS])
        for curve_name, curve in _EC_CURVES.values():
            if parameters == encode_named_curve_parameters(curve_name):
                return ec.EllipticCurvePublicKey.from_encoded_point(curve(), _ec_point(public_object, curve()))
        raise Pkcs11Error(f"unsupported EC parameters {parameters.hex()} in the token")
    raise Pkcs11Error(f"unsupported key type {key_type!r} in the token")


def _ec_point(public_object: Any, curve: ec.EllipticCurve) -> bytes:
    # CKA_EC_POINT is a DER OCTET STRING around the point; a few modules return the bare point.
    point = bytes(public_object[Attribute.EC_POINT])
    bare_length = 1 + 2 * ((curve.key_size + 7) // 8)
    if len(point) == bare_length:
        return point
    if point[0] != 0x04 or len(point) < 3:
        raise Pkcs11Error("unexpected CKA_EC_POINT encoding")
    offset = 2 + (point[1] & 0x7F if point[1] & 0x80 else 0)
    return point[offset:]


@dataclass(frozen=True)
class KeyProtection:
    """What the token reports about a private key (PKCS#11 attributes)."""

    token: bool  # CKA_TOKEN: persistent
    sensitive: bool  # CKA_SENSITIVE: its secret parts cannot be read
    extractable: bool  # CKA_EXTRACTABLE: it may be wrapped (exported encrypted)
    always_sensitive: bool  # CKA_ALWAYS_SENSITIVE: never was readable
    never_extractable: bool  # CKA_NEVER_EXTRACTABLE: never could be exported
    local: bool  # CKA_LOCAL: generated in the token (not imported)


def _protection_of(private_object: Any) -> KeyProtection:
    def flag(attribute: Attribute, unknown: bool) -> bool:
        try:
            return bool(private_object[attribute])
        except pkcs11.exceptions.AttributeTypeInvalid:  # a module that does not keep it
            return unknown

    return KeyProtection(
        token=flag(Attribute.TOKEN, False),
        sensitive=flag(Attribute.SENSITIVE, False),
        extractable=flag(Attribute.EXTRACTABLE, True),
        always_sensitive=flag(Attribute.ALWAYS_SENSITIVE, False),
        never_extractable=flag(Attribute.NEVER_EXTRACTABLE, False),
        local=flag(Attribute.LOCAL, False),
    )


def pkcs11_generate_ca_key(
    *, module_path: str, token_label: str, key_label: str, pin: str, key_type: str
) -> PublicKey:
    """Generate a CA key pair inside the token; returns its public key.

    The private key is persistent (CKA_TOKEN), private, sensitive and not extractable, and
    may only sign; the public key may only verify. A key with this label must not exist yet.
    """
    if key_type not in _RSA_BITS and key_type not in _EC_CURVES:
        raise ValueError(f"unknown key type {key_type!r}; expected one of {', '.join(KEY_TYPES)}")
    if not key_label:
        raise ValueError("a PKCS#11 key needs a label")

    def generate(token: _TokenSession) -> PublicKey:
        session = token.session
        existing = list(session.get_objects({Attribute.LABEL: key_label}))
        if existing:
            raise Pkcs11Error(f"the token {token_label!r} holds an object labelled {key_label!r} already")
        arguments: dict[str, Any] = dict(
            id=secrets.token_bytes(16),  # CKA_ID pairs the two halves for other PKCS#11 tools
            label=key_label,
            store=True,
            capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
            private_template={
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
            },
            public_template={Attribute.PRIVATE: False},
        )
        if key_type in _RSA_BITS:
            public_object, _ = session.generate_keypair(KeyType.RSA, _RSA_BITS[key_type], **arguments)
        else:
            parameters = session.create_domain_parameters(
                KeyType.EC,
                {Attribute.EC_PARAMS: encode_named_curve_parameters(_EC_CURVES[key_type][0])},
                local=True,
            )
            public_object, _ = parameters.generate_keypair(**arguments)
        return _public_key_of(public_object)

    return _with_session(module_path, token_label, pin, generate)


class Pkcs11KeyBackend(ExternalKeyBackend):
    """A CA key in a PKCS#11 token; signs certificates, CRLs and OCSP responses there."""

    def __init__(self, *, module_path: str, token_label: str, key_label: str, pin: str) -> None:
        self.module_path = module_path
        self.reference = Pkcs11KeyReference(token_label, key_label)
        self._pin = pin
        self._public_key: PublicKey | None = None

    def __repr__(self) -> str:
        return f"Pkcs11KeyBackend({self.reference.uri!r}, module={self.module_path!r})"

    def _run(self, operation: Callable[[_TokenSession], T]) -> T:
        return _with_session(self.module_path, self.reference.token_label, self._pin, operation)

    def _private_object(self, token: _TokenSession) -> Any:
        try:
            return token.key(ObjectClass.PRIVATE_KEY, self.reference.key_label)
        except pkcs11.exceptions.NoSuchKey:
            raise Pkcs11Error(f"no private key {self.reference.uri} in the token") from None
        except pkcs11.exceptions.MultipleObjectsReturned:
            raise Pkcs11Error(f"several private keys match {self.reference.uri}") from None

    def public_key(self) -> PublicKey:
        if self._public_key is None:

            def load(token: _TokenSession) -> PublicKey:
                protection = _protection_of(self._private_object(token))
                if not protection.sensitive or protection.extractable:
                    raise Pkcs11Error(
                        f"the key {self.reference.uri} can be exported (sensitive={protection.sensitive}, "
                        f"extractable={protection.extractable}); generate the CA key with init_ca"
                    )
                try:
                    public_object = token.key(ObjectClass.PUBLIC_KEY, self.reference.key_label)
                except pkcs11.exceptions.NoSuchKey:
                    raise Pkcs11Error(f"no public key {self.reference.uri} in the token") from None
                return _public_key_of(public_object)

            self._public_key = self._run(load)
        return self._public_key

    def key_protection(self) -> KeyProtection:
        return self._run(lambda token: _protection_of(self._private_object(token)))

    def _sign(self, data: bytes, algorithm: SignatureHash) -> bytes:
        public_key = self.public_key()

        def sign(token: _TokenSession) -> bytes:
            private_object = self._private_object(token)
            if isinstance(public_key, rsa.RSAPublicKey):
                return bytes(private_object.sign(data, mechanism=_RSA_MECHANISMS[algorithm.name]))
            # Raw ECDSA over our digest: CKM_ECDSA_SHA384 and friends are optional (SoftHSM2 lacks them).
            raw = bytes(private_object.sign(digest_of(data, algorithm), mechanism=Mechanism.ECDSA))
            half = len(raw) // 2
            return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))

        return self._run(sign)


__all__ = [
    "Pkcs11Error",
    "Pkcs11KeyReference",
    "KeyProtection",
    "Pkcs11KeyBackend",
    "pkcs11_generate_ca_key",
    "pkcs11_sessions_close",
    "new_key_label",
]
