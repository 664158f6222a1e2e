"""Who is told what. Only active accounts with an address; nobody is asked to decide or carry
out a step they may not take (separation of duties), so nobody is mailed about their own request.

- New certificate requests: the members of Approvers who may approve, except the employee
  and whoever submitted it. When no approver is left, the PKI administrators (who may
  approve too), so that a request never waits unseen. A bulk enrollment's requests: one mail
  per batch to the same people, except whoever started it.
- New recovery requests: the members of Approvers who may decide recoveries (only they may,
  escrow.services.recovery), except the requester, the keys' owner and the recipient.
- Approved recoveries: the accounts of the active key recovery agents (and, when an active
  agent credential is bound to no account, the members of Key recovery agents), except the
  requester, the owner, the recipient and those who decided it.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db.models import Q

from escrow.models import KeyRecoveryAgent, RecoveryRequest

from ..models import CertificateRequest
from ..roles import APPROVERS, KEY_RECOVERY_AGENTS, PKI_ADMINISTRATORS


def mail_address(user) -> str:
    """Where a person reads mail: their employee record's mailbox (the directory's), else the account's."""
    # The account's employee record as the caller loaded it (one query if it did not), as the
    # greeting reads it: no second query per recipient.
    employee = getattr(user, "employee", None)
    return (employee.mail if employee else "") or (user.email or "")


def _members(group: str, *, permission: str, exclude: Iterable[int]) -> list:
    users = (
        get_user_model()
        .objects.filter(is_active=True, groups__name=group)
        .exclude(pk__in=[pk for pk in exclude if pk is not None])
        .distinct()
        .order_by("username")
    )
    return [user for user in users if user.has_perm(permission)]


def _request_deciders(*, exclude: Iterable[int]) -> list:
    """Approvers who may approve requests, else the PKI administrators who may, but not `exclude`."""
    permission = "enrollment.approve_certificaterequest"
    return _members(APPROVERS, permission=permission, exclude=exclude) or _members(
        PKI_ADMINISTRATORS, permission=permission, exclude=exclude
    )


def request_approvers(request: CertificateRequest) -> list:
    return _request_deciders(exclude=(request.employee.user_id, request.submitted_by_id))


def batch_approvers(batch) -> list:
    """Those who may approve a batch's requests: not who started it (the submitter of them all)."""
    return _request_deciders(exclude=(batch.started_by_id,))


def _recovery_parties(recovery: RecoveryRequest) -> tuple[int, ...]:
    return (recovery.requested_by_id, recovery.employee.user_id, recovery.recipient_id)


def recovery_approvers(recovery: RecoveryRequest) -> list:
    return _members(APPROVERS, permission="escrow.approve_recoveryrequest", exclude=_recovery_parties(recovery))


def recovery_agents(recovery: RecoveryRequest) -> list:
    deciders = list(recovery.decisions.values_list("approver_id", flat=True))
    exclude = {pk for pk in (*_recovery_parties(recovery), *deciders) if pk is not None}
    active = KeyRecoveryAgent.objects.filter(is_active=True)
    accounts = Q(recovery_agents__in=active.filter(user__isnull=False))
    if active.filter(user__isnull=True).exists():
        accounts |= Q(groups__name=KEY_RECOVERY_AGENTS)
    users = get_user_model().objects.filter(accounts, is_active=True).exclude(pk__in=exclude).distinct().order_by("username")
    return [user for user in users if user.has_perm("escrow.complete_recoveryrequest")]
