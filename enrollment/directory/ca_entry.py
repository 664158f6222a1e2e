"""The directory's CA entry: the issuing CA's certificate and current CRL on PORTAL_LDAP_CA_ENTRY_DN.

Published after each revocation's CRL (a task after commit), by the periodic CRL refresh and
by `manage.py publish_ca`; never raises for directory problems, which are logged and audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from audit.events import AuditAction
from audit.services import audit_record
from core.exceptions import PortalError

from ..models import CertificateAuthority
from ..revocation.services import crl_current
from . import publisher
from .client import DirectoryClient
from .services import directory_config

logger = logging.getLogger(__name__)


@dataclass
class CaPublishOutcome:
    ok: bool = True
    # No directory or no PORTAL_LDAP_CA_ENTRY_DN: nothing to do.
    skipped: bool = False
    entry_dn: str = ""
    changed: bool = False
    error: str = ""

    def __str__(self) -> str:
        if self.skipped:
            return "No CA entry is configured (PORTAL_LDAP_URI and PORTAL_LDAP_CA_ENTRY_DN)."
        if not self.ok:
            return self.error
        return f"{self.entry_dn}: " + ("CA certificate and CRL written." if self.changed else "already current.")


def ca_entry_publish(*, ca: CertificateAuthority, connection: DirectoryClient | None = None, actor=None) -> CaPublishOutcome:
    """Put `ca`'s certificate and current CRL on the CA entry, replacing what is there.

    Never raises for directory or configuration errors: they are logged and audited
    (`directory.ca_publish_failed`) and returned; the next CRL or `manage.py publish_ca`
    tries again. Success is audited as `directory.ca_published`.
    """
    try:
        config = connection.config if connection is not None else directory_config()
    except PortalError as exc:
        return _ca_publish_failed(ca=ca, entry_dn="", error=exc.message, actor=actor)
    if config is None or not config.ca_entry_dn:
        return CaPublishOutcome(skipped=True)
    ca = CertificateAuthority.objects.get(pk=ca.pk)  # the caller's copy may predate the latest CRL
    client = connection or DirectoryClient(config)
    try:
        crl = crl_current(ca=ca)  # the stored CRL, or a fresh one when it is about to go stale
        result = publisher.publish_ca(
            client, dn=config.ca_entry_dn, certificate_der=bytes(ca.certificate_der), crl_der=bytes(crl)
        )
    except PortalError as exc:  # DirectoryError, or no CRL could be signed
        return _ca_publish_failed(ca=ca, entry_dn=config.ca_entry_dn, error=exc.message, actor=actor)
    except Exception as exc:
        logger.exception("Publishing CA %s to %s failed unexpectedly", ca.slug, config.ca_entry_dn)
        error = f"publishing the CA entry failed unexpectedly ({type(exc).__name__}); see the server log."
        return _ca_publish_failed(ca=ca, entry_dn=config.ca_entry_dn, error=error, actor=actor)
    finally:
        if connection is None:
            client.close()
    ca.refresh_from_db(fields=["crl_number"])  # crl_current may have signed a new one
    audit_record(
        action=AuditAction.DIRECTORY_CA_PUBLISHED,
        actor=actor,
        obj=ca,
        details={"ca": ca.slug, "entry_dn": result.entry_dn, "changed": result.changed, "crl_number": ca.crl_number},
    )
    return CaPublishOutcome(entry_dn=result.entry_dn, changed=result.changed)


def _ca_publish_failed(*, ca: CertificateAuthority, entry_dn: str, error: str, actor) -> CaPublishOutcome:
    logger.warning("Publishing CA %s to the directory entry %s failed: %s", ca.slug, entry_dn or "(none)", error)
    audit_record(
        action=AuditAction.DIRECTORY_CA_PUBLISH_FAILED, actor=actor, obj=ca, details={"ca": ca.slug, "entry_dn": entry_dn, "error": error}
    )
    return CaPublishOutcome(ok=False, entry_dn=entry_dn, error=error)
