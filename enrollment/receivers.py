from . import signals


def issue_on_approval(sender, *, request, **kwargs) -> None:
    from .services import certificate_request_fulfil

    certificate_request_fulfil(request=request)


def publish_on_issue(sender, *, certificate, **kwargs) -> None:
    """Record the directory publication in the issuing transaction; publish after commit."""
    from django.conf import settings
    from django.db import transaction

    from . import tasks
    from .directory.services import publication_schedule

    if not getattr(settings, "PORTAL_LDAP_URI", ""):
        return
    publication = publication_schedule(certificate=certificate)
    if publication is not None:
        transaction.on_commit(
            lambda: tasks.directory_publication_run(publication_id=publication.pk), robust=True
        )


def connect() -> None:
    signals.post_approve_request.connect(issue_on_approval, dispatch_uid="enrollment.issue_on_approval")
    signals.post_issue_certificate.connect(publish_on_issue, dispatch_uid="enrollment.publish_on_issue")
