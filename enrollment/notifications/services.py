"""Mail with links for every step that waits for a person, recorded in the step's transaction.

Each `notify_*` is one line at its call site in a workflow service. It renders one message
per recipient (text and HTML, templates/mail/), writes it as an OutboxMail row in the
caller's transaction and sends it once that commits: a rolled-back step mails nobody.
Sending happens outside any transaction and never raises; a failure leaves the row pending
with the error, and `mail_outbox_drain` (`manage.py send_pending_mail`, Celery beat) retries
it with capped exponential backoff. Delivery is at least once: a process killed between the
server's answer and recording it sends that message again after CLAIM_SECONDS.

Links are absolute, from PORTAL_SITE_URL. No mail carries a secret (passphrase, key, token)
nor a PKCS#12: employees download on the portal, after logging in.

The expiry reminder is the exception: the expiry job sends it at once, inside the
transaction that records its ExpiryNotice rows (the job's own ledger), so a failing mail
server rolls the notice back and the next run sends it (enrollment.services.expiry).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.conf import settings
from django.urls import reverse

from core.mail import mail_deliver, mail_render
from escrow.models import RecoveryDecision, RecoveryRequest

from ..models import Certificate, CertificateRequest
from . import recipients
from .outbox import _display_name, _drop_unsent, _record

logger = logging.getLogger(__name__)

REVOCATION_REASONS = {
    "unspecified": "no reason given",
    "key_compromise": "the private key may be known to someone else (key compromise)",
    "affiliation_changed": "your affiliation with the organization changed",
    "superseded": "it was replaced by a newer certificate (superseded)",
    "cessation_of_operation": "it is no longer needed (cessation of operation)",
    "privilege_withdrawn": "the right to hold it was withdrawn",
}


# --- Links and names -------------------------------------------------------------------------


def site_url(name: str, *args, query: str = "") -> str:
    """An absolute link to a page of the portal (PORTAL_SITE_URL + the path)."""
    return f"{settings.PORTAL_SITE_URL}{reverse(name, args=args)}{query}"


def _keys(recovery: RecoveryRequest) -> str:
    if recovery.certificate_id:
        return f"the key of certificate {recovery.certificate.serial}"
    return f"all escrowed keys of {recovery.employee.mail}"


def _recovery_link_for(user, recovery: RecoveryRequest) -> str:
    """The request's admin page for those who may see it there, the self-service page otherwise."""
    if user.has_perm("escrow.view_recoveryrequest"):
        return site_url("admin:escrow_recoveryrequest_change", recovery.pk)
    return site_url("escrow:index")


# --- Certificate requests and certificates ---------------------------------------------------


def notify_request_pending(*, request: CertificateRequest) -> None:
    """A new request waits for an approver: the approvers get the queue and the request's page."""
    employee = request.employee
    _record(
        kind="request.pending",
        about=f"certificaterequest:{request.pk}",
        users=recipients.request_approvers(request),
        template="request_pending",
        subject=f"Certificate request #{request.pk} for {employee.mail} waits for approval",
        context={
            "request": request,
            "employee": employee,
            "submitted_by": None if request.submitted_by_id == employee.user_id else request.submitted_by,
            "pending": CertificateRequest.objects.filter(state=CertificateRequest.State.PENDING).count(),
            "queue_url": site_url("admin:enrollment_certificaterequest_changelist", query="?state__exact=pending"),
            "request_url": site_url("admin:enrollment_certificaterequest_change", request.pk),
        },
    )


def notify_batch_pending(*, batch) -> None:
    """A batch's requests wait for approval: each approver gets one mail for the whole batch (a file of
    5,000 people is not 5,000 mails per approver), with the queue filtered to the batch."""
    waiting = batch.requests.filter(state=CertificateRequest.State.PENDING).count()
    if not waiting:
        return
    _record(
        kind="batch.pending",
        about=f"enrollmentbatch:{batch.pk}",
        users=recipients.batch_approvers(batch),
        template="batch_pending",
        subject=f"Enrollment batch #{batch.pk}: {waiting} certificate request{'s wait' if waiting != 1 else ' waits'} for approval",
        context={
            "batch": batch,
            "waiting": waiting,
            "queue_url": site_url(
                "admin:enrollment_certificaterequest_changelist", query=f"?batch={batch.pk}&state__exact=pending"
            ),
        },
    )


def notify_request_rejected(*, request: CertificateRequest) -> None:
    """The employee (and whoever submitted it for them) learns why, and where to ask again."""
    _drop_unsent(about=f"certificaterequest:{request.pk}", kinds=["request.pending"])
    _record(
        kind="request.rejected",
        about=f"certificaterequest:{request.pk}",
        users=[request.employee.user, request.submitted_by],
        template="request_rejected",
        subject=f"Your certificate request #{request.pk} was rejected",
        context={"request": request, "employee": request.employee, "home_url": site_url("portal:home")},
    )


def notify_request_failed(*, request: CertificateRequest) -> None:
    """Issuance failed for good: the employee learns why; the PKI administrators see it in the audit log."""
    _drop_unsent(about=f"certificaterequest:{request.pk}", kinds=["request.pending"])
    _record(
        kind="request.failed",
        about=f"certificaterequest:{request.pk}",
        users=[request.employee.user],
        template="request_failed",
        subject=f"Your certificate request #{request.pk} could not be issued",
        context={"request": request, "employee": request.employee, "home_url": site_url("portal:home")},
    )


def notify_certificate_ready(*, request: CertificateRequest, certificates: Sequence[Certificate]) -> None:
    """The employee's certificate(s) wait for download until the pickup copy expires."""
    items = []
    for certificate in certificates:
        pickup = getattr(certificate, "pickup", None)
        items.append({
            "certificate": certificate,
            "usage": certificate.get_usage_display(),
            "download_url": site_url("portal:pkcs12", certificate.serial),
            "deadline": pickup.expires_at if pickup is not None else None,
            "escrowed": hasattr(certificate, "escrow"),
        })
    deadlines = [item["deadline"] for item in items if item["deadline"] is not None]
    _drop_unsent(about=f"certificaterequest:{request.pk}", kinds=["request.pending"])
    _record(
        kind="certificate.ready",
        about=f"certificaterequest:{request.pk}",
        users=[request.employee.user],
        template="certificate_ready",
        subject=(
            f"Your S/MIME certificate is ready: download it by {min(deadlines):%Y-%m-%d}"
            if deadlines else "Your S/MIME certificate is ready"
        ),
        context={
            "request": request,
            "items": items,
            "deadline": min(deadlines) if deadlines else None,
            "home_url": site_url("portal:home"),
            "install_url": site_url("portal:install"),
            "escrowed_any": any(item["escrowed"] for item in items),
            "recovery_approvals": settings.PORTAL_RECOVERY_APPROVALS,
        },
    )


def notify_certificate_revoked(*, certificate: Certificate) -> None:
    """The owner learns that the certificate is revoked, why, and what to do now."""
    _record(
        kind="certificate.revoked",
        about=f"certificate:{certificate.pk}",
        users=[certificate.employee.user],
        template="certificate_revoked",
        subject=f"Your S/MIME certificate {certificate.serial} was revoked",
        context={
            "certificate": certificate,
            "reason": certificate.revocation_reason or "unspecified",
            "reason_text": REVOCATION_REASONS.get(certificate.revocation_reason or "unspecified", certificate.revocation_reason),
            "by_owner": certificate.revoked_by_id == certificate.employee.user_id,
            "escrowed": hasattr(certificate, "escrow"),
            "home_url": site_url("portal:home"),
            "recovery_url": site_url("escrow:index"),
        },
    )


def notify_certificate_expiring(*, certificate: Certificate) -> None:
    """The expiry reminder, sent now (see the module's docstring); raises when the mail server fails."""
    owner = certificate.employee.user
    rendered = mail_render(
        template="certificate_expiring",
        subject=f"Your S/MIME certificate expires on {certificate.not_after:%Y-%m-%d}",
        context={
            "certificate": certificate,
            "name": certificate.employee.display_name,
            "renewal_days": settings.PORTAL_RENEWAL_WINDOW_DAYS,
            "home_url": site_url("portal:home"),
            "site_url": settings.PORTAL_SITE_URL,
            "recipient": owner,
        },
    )
    mail_deliver(to=certificate.mailbox, subject=rendered.subject, text=rendered.text, html=rendered.html)


# --- Key recovery ----------------------------------------------------------------------------


def _recovery_context(recovery: RecoveryRequest) -> dict:
    return {
        "recovery": recovery,
        "keys": _keys(recovery),
        "owner": recovery.employee,
        "requested_by": _display_name(recovery.requested_by),
        "recipient_name": _display_name(recovery.recipient),
        "recovery_url": site_url("escrow:index"),
    }


def notify_recovery_requested(*, recovery: RecoveryRequest) -> None:
    """The owner hears of it at once (a hostile request must not go unnoticed); approvers are asked to decide."""
    context = _recovery_context(recovery)
    about = f"recoveryrequest:{recovery.pk}"
    _record(
        kind="recovery.requested.owner", about=about, users=[recovery.employee.user],
        template="recovery_requested_owner",
        subject=f"A recovery of your S/MIME key was requested (#{recovery.pk})",
        context=context,
    )
    _record(
        kind="recovery.requested.approver", about=about, users=recipients.recovery_approvers(recovery),
        template="recovery_requested_approver",
        subject=f"Key recovery #{recovery.pk} for {recovery.employee.mail} waits for approval",
        context={**context, "decide_url": site_url("admin:escrow_recoveryrequest_change", recovery.pk)},
    )


def notify_recovery_approved(*, recovery: RecoveryRequest) -> None:
    """Once fully approved (not after each approval): the owner is told, the agents asked to complete it."""
    if recovery.status != RecoveryRequest.Status.APPROVED:
        return
    _drop_unsent(about=f"recoveryrequest:{recovery.pk}", kinds=["recovery.requested.approver"])
    context = {**_recovery_context(recovery), "expires_at": recovery.approval_expires_at}
    about = f"recoveryrequest:{recovery.pk}"
    _record(
        kind="recovery.approved.owner", about=about, users=[recovery.employee.user],
        template="recovery_approved_owner",
        subject=f"The recovery of your S/MIME key was approved (#{recovery.pk})",
        context=context,
    )
    _record(
        kind="recovery.approved.agent", about=about, users=recipients.recovery_agents(recovery),
        template="recovery_approved_agent",
        subject=f"Key recovery #{recovery.pk} is approved and waits for a key recovery agent",
        context={**context, "complete_url": site_url("admin:escrow_recoveryrequest_complete", recovery.pk)},
    )


RECOVERY_ASKS = ["recovery.requested.approver", "recovery.approved.agent"]


def _per_user(users: Iterable, build) -> None:
    """Mails whose link depends on the recipient: one _record per person."""
    seen = set()
    for user in users:
        if user is not None and user.pk not in seen:
            seen.add(user.pk)
            build(user)


def notify_recovery_rejected(*, recovery: RecoveryRequest) -> None:
    """The requester and the owner learn that it was rejected, and why."""
    _drop_unsent(about=f"recoveryrequest:{recovery.pk}", kinds=RECOVERY_ASKS)
    rejection = recovery.decisions.filter(decision=RecoveryDecision.Decision.REJECT).order_by("-at", "-id").first()
    context = {**_recovery_context(recovery), "comment": rejection.comment if rejection else ""}
    _per_user(
        [recovery.requested_by, recovery.employee.user],
        lambda user: _record(
            kind="recovery.rejected", about=f"recoveryrequest:{recovery.pk}", users=[user],
            template="recovery_rejected",
            subject=f"Key recovery #{recovery.pk} was rejected",
            context={**context, "link": _recovery_link_for(user, recovery)},
        ),
    )


def notify_recovery_expired(*, recovery: RecoveryRequest) -> None:
    """The approval ran out before an agent completed it: the requester and the owner are told."""
    _drop_unsent(about=f"recoveryrequest:{recovery.pk}", kinds=RECOVERY_ASKS)
    context = {**_recovery_context(recovery), "expired_at": recovery.approval_expires_at}
    _per_user(
        [recovery.requested_by, recovery.employee.user],
        lambda user: _record(
            kind="recovery.expired", about=f"recoveryrequest:{recovery.pk}", users=[user],
            template="recovery_expired",
            subject=f"Key recovery #{recovery.pk} expired before it was completed",
            context={**context, "link": _recovery_link_for(user, recovery)},
        ),
    )


def notify_recovery_withdrawn(*, recovery: RecoveryRequest, actor, reason: str) -> None:
    """The owner and the requester learn who withdrew it and why (not the one who did it)."""
    _drop_unsent(about=f"recoveryrequest:{recovery.pk}", kinds=RECOVERY_ASKS)
    context = {**_recovery_context(recovery), "actor": _display_name(actor), "reason": reason}
    _per_user(
        [user for user in (recovery.employee.user, recovery.requested_by) if user.pk != actor.pk],
        lambda user: _record(
            kind="recovery.withdrawn", about=f"recoveryrequest:{recovery.pk}", users=[user],
            template="recovery_withdrawn",
            subject=f"Key recovery #{recovery.pk} was withdrawn",
            context={**context, "link": _recovery_link_for(user, recovery)},
        ),
    )


def notify_recovery_completed(*, recovery: RecoveryRequest, expires_at: datetime) -> None:
    """The owner learns that the keys were recovered and for whom; the recipient where to download them."""
    _drop_unsent(about=f"recoveryrequest:{recovery.pk}", kinds=RECOVERY_ASKS)
    context = {
        **_recovery_context(recovery),
        "expires_at": expires_at,
        "count": recovery.pickups.count(),
        "owner_is_recipient": recovery.recipient_id == recovery.employee.user_id,
    }
    about = f"recoveryrequest:{recovery.pk}"
    _record(
        kind="recovery.completed.owner", about=about, users=[recovery.employee.user],
        template="recovery_completed_owner",
        subject=f"Your S/MIME key was recovered (#{recovery.pk})",
        context=context,
    )
    if not context["owner_is_recipient"]:
        _record(
            kind="recovery.completed.recipient", about=about, users=[recovery.recipient],
            template="recovery_completed_recipient",
            subject=f"Recovered S/MIME keys wait for you (#{recovery.pk})",
            context=context,
        )
