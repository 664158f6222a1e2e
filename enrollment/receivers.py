from . import signals


def issue_on_approval(sender, *, request, **kwargs) -> None:
    from .services import certificate_request_fulfil

    certificate_request_fulfil(request=request)


def connect() -> None:
    signals.post_approve_request.connect(issue_on_approval, dispatch_uid="enrollment.issue_on_approval")
