"""Receivers of the enrollment signals: the optional directory. A few lines each; the work runs after commit."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from . import signals, tasks
from .directory.services import employee_directory_resync, publication_schedule, publication_schedule_removal


def _directory_enabled() -> bool:
    return bool(getattr(settings, "PORTAL_LDAP_URI", ""))


def _run_publication_after_commit(publication) -> None:
    if publication is not None:
        transaction.on_commit(lambda: tasks.directory_publication_run_soon(publication_id=publication.pk), robust=True)


def publish_on_issue(sender, *, certificate, **kwargs) -> None:
    """Record the directory publication in the issuing transaction; publish after commit."""
    if _directory_enabled():
        _run_publication_after_commit(publication_schedule(certificate=certificate))


def unpublish_on_revoke_or_expiry(sender, *, certificate, **kwargs) -> None:
    if _directory_enabled():
        _run_publication_after_commit(publication_schedule_removal(certificate=certificate))


def publish_ca_entry_on_revoke(sender, *, certificate, **kwargs) -> None:
    """A revocation made the CRL stale: the directory's CA entry gets a fresh one after commit."""
    transaction.on_commit(lambda: tasks.ca_entry_publish_soon(ca_id=certificate.issuer_id), robust=True)


def resync_directory_on_dn_change(sender, *, employee, **kwargs) -> None:
    """The person's certificates go to their new entry (and leave the old one) after commit."""
    if _directory_enabled():
        for publication in employee_directory_resync(employee=employee):
            _run_publication_after_commit(publication)


def connect() -> None:
    signals.post_issue_certificate.connect(publish_on_issue, dispatch_uid="enrollment.publish_on_issue")
    signals.post_revoke_certificate.connect(unpublish_on_revoke_or_expiry, dispatch_uid="enrollment.unpublish_on_revoke")
    signals.post_revoke_certificate.connect(publish_ca_entry_on_revoke, dispatch_uid="enrollment.publish_ca_on_revoke")
    signals.post_expire_certificate.connect(unpublish_on_revoke_or_expiry, dispatch_uid="enrollment.unpublish_on_expiry")
    signals.employee_directory_dn_changed.connect(
        resync_directory_on_dn_change, dispatch_uid="enrollment.resync_directory_on_dn_change"
    )
