"""Receivers of the enrollment signals: a few lines each; side effects run after commit."""

from __future__ import annotations

from . import signals


def issue_on_approval(sender, *, request, **kwargs) -> None:
    from .services import certificate_request_fulfil

    certificate_request_fulfil(request=request)


def _directory_enabled() -> bool:
    from django.conf import settings

    return bool(getattr(settings, "PORTAL_LDAP_URI", ""))


def _run_publication_after_commit(publication) -> None:
    from django.db import transaction

    from . import tasks

    if publication is not None:
        transaction.on_commit(lambda: tasks.directory_publication_run_soon(publication_id=publication.pk), robust=True)


def publish_on_issue(sender, *, certificate, **kwargs) -> None:
    """Record the directory publication in the issuing transaction; publish after commit."""
    from .directory.services import publication_schedule

    if _directory_enabled():
        _run_publication_after_commit(publication_schedule(certificate=certificate))


def unpublish_on_revoke_or_expiry(sender, *, certificate, **kwargs) -> None:
    from .directory.services import publication_schedule_removal

    if _directory_enabled():
        _run_publication_after_commit(publication_schedule_removal(certificate=certificate))


def reissue_crl_on_revoke(sender, *, certificate, **kwargs) -> None:
    """Relying parties learn of a revocation at the next CRL fetch: reissue it now, in this transaction."""
    from django.db import transaction

    from . import tasks
    from .services import crl_generate

    crl_generate(ca=certificate.issuer)
    transaction.on_commit(lambda: tasks.ca_entry_publish_soon(ca_id=certificate.issuer_id), robust=True)


def connect() -> None:
    signals.post_approve_request.connect(issue_on_approval, dispatch_uid="enrollment.issue_on_approval")
    signals.post_issue_certificate.connect(publish_on_issue, dispatch_uid="enrollment.publish_on_issue")
    signals.post_revoke_certificate.connect(reissue_crl_on_revoke, dispatch_uid="enrollment.reissue_crl_on_revoke")
    signals.post_revoke_certificate.connect(unpublish_on_revoke_or_expiry, dispatch_uid="enrollment.unpublish_on_revoke")
    signals.post_expire_certificate.connect(unpublish_on_revoke_or_expiry, dispatch_uid="enrollment.unpublish_on_expiry")
