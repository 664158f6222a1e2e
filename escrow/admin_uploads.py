"""The agent's PKCS#12 kept across a refused try on the completion page, so that a mistyped
passphrase does not mean finding and uploading the file again (browsers never re-fill a file input).

Why this design, and not the file in a hidden field or in the session as it is: the promise is
that nobody alone gets a private key (SECURITY.md), and an agent's key opens every escrowed key.
- The file never goes back to the browser, and never rests in plaintext on the server: it is
  sealed (AES-256-GCM, escrow/sealing.py) under a key drawn afresh for each try.
- The sealed bytes stay in the agent's session (server side: the database); the key only in a
  hidden field of the page that was answered (never cached: the admin sends no-store). A copy of
  the database alone, or of the page alone, opens nothing; the PKCS#12 is itself encrypted under
  the agent's passphrase besides.
- The associated data binds it to the agent, the recovery request and its expiry (KEEP_MINUTES);
  it is wiped on success, on an error a new passphrase cannot cure, on a page load without the
  key (a reload or a new visit) and once expired. The passphrase is never kept.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from . import sealing

SESSION_KEY = "escrow.kept_agent_pkcs12"
KEEP_MINUTES = 10
MAX_KEPT_BYTES = 64 * 1024  # an agent's PKCS#12 is a few kilobytes; nothing larger is worth keeping


@dataclass(frozen=True)
class KeptUpload:
    name: str
    expires_at: datetime
    key: str  # for the page's hidden field: the only way back to the sealed bytes


def _associated_data(*, user_id: int, recovery_id: int, expires: str, name: str) -> bytes:
    return f"agent-pkcs12 kept for user {user_id}, recovery {recovery_id}, until {expires}, named {name}".encode()


def agent_upload_keep(*, session, user_id: int, recovery_id: int, data: bytes, name: str) -> KeptUpload | None:
    """Seal `data` into the session under a fresh key; the key comes back for the page only."""
    if not data or len(data) > MAX_KEPT_BYTES:
        agent_upload_forget(session=session)
        return None
    name = (name or "agent.p12")[-100:]
    key = os.urandom(32)
    expires_at = timezone.now() + timedelta(minutes=KEEP_MINUTES)
    expires = expires_at.isoformat()
    sealed = sealing.seal(
        plaintext=data,
        kek=key,
        associated_data=_associated_data(user_id=user_id, recovery_id=recovery_id, expires=expires, name=name),
    )
    session[SESSION_KEY] = {
        "recovery": recovery_id,
        "expires": expires,
        "name": name,
        "sealed": base64.b64encode(sealed).decode(),
    }
    return KeptUpload(name=name, expires_at=expires_at, key=base64.urlsafe_b64encode(key).decode())


def agent_upload_open(*, session, user_id: int, recovery_id: int, key: str) -> tuple[bytes, str] | None:
    """The kept file and its name, if `key` opens what this session keeps for this request; else None
    (and whatever is kept is wiped: expired, another request's, or a key that does not fit)."""
    kept = session.get(SESSION_KEY)
    if not isinstance(kept, dict) or not key:
        return None
    try:
        expires_at = datetime.fromisoformat(kept["expires"])
        if kept["recovery"] != recovery_id or expires_at <= timezone.now():
            raise ValueError("expired, or kept for another request")
        data = sealing.unseal(
            sealed=base64.b64decode(kept["sealed"]),
            kek=base64.urlsafe_b64decode(key.encode()),
            associated_data=_associated_data(
                user_id=user_id, recovery_id=recovery_id, expires=kept["expires"], name=kept["name"]
            ),
        )
    except (KeyError, TypeError, ValueError, binascii.Error, sealing.SealError):
        agent_upload_forget(session=session)
        return None
    return data, kept["name"]


def agent_upload_forget(*, session) -> None:
    if SESSION_KEY in session:
        del session[SESSION_KEY]
