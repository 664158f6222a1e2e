"""What the recovery admin tells people: the state a request is really in after each step."""

from __future__ import annotations

from .models import RecoveryRequest


def who_receives(obj: RecoveryRequest) -> str:
    """What an approver must see before deciding: whose keys go to whom, and why."""
    owner = obj.employee.user.get_username()
    recipient = obj.recipient.get_username()
    to = "the owner themselves" if obj.recipient_id == obj.employee.user_id else recipient
    return f"keys of {owner} go to {to} ({obj.get_purpose_display()}; requested by {obj.requested_by.get_username()})"


def completion_message(completed: RecoveryRequest) -> str:
    pickups = list(completed.pickups.all())
    count = f"{len(pickups)} recovered key waits" if len(pickups) == 1 else f"{len(pickups)} recovered keys wait"
    until = f" until {min(p.expires_at for p in pickups):%Y-%m-%d %H:%M} UTC" if pickups else ""
    return (
        f"Recovery #{completed.pk} completed: {count} for {completed.recipient.get_username()} "
        f"on their self-service page{until}."
    )


def decision_outcome(obj: RecoveryRequest, *, verb: str) -> str:
    """What a decision left the request in, as it is now (not the bare status: "pending" after an
    approval read as if nothing had happened)."""
    if verb == "approved":
        if obj.status == RecoveryRequest.Status.APPROVED:
            until = f" until {obj.approval_expires_at:%Y-%m-%d %H:%M} UTC" if obj.approval_expires_at else ""
            return (
                f"Approval {obj.approvals} of {obj.required_approvals} recorded; recovery #{obj.pk} is approved: "
                f"a key recovery agent can complete it{until}."
            )
        missing = obj.required_approvals - obj.approvals
        waits = "a second approver" if (obj.approvals, missing) == (1, 1) else f"{missing} more approver(s)"
        return f"Approval {obj.approvals} of {obj.required_approvals} recorded; recovery #{obj.pk} waits for {waits}."
    if verb == "rejected":
        return f"Recovery #{obj.pk} rejected: it is closed, and can no longer be approved or completed."
    return f"Recovery #{obj.pk} withdrawn: it can no longer be approved or completed."
