"""Enrollment's two-person requests: one person asks, a second one confirms (offboarding a trusted
account, granting a trusted role, changing a certified identity). enrollment.models re-exports them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class OffboardingRequest(models.Model):
    """A PKI administrator asked to offboard an account that holds a trusted role; a second one confirms.

    The confirmation is the offboarding itself (services.employees.employee_offboard).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="offboarding_requests")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="offboarding_requests_made"
    )
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="offboarding_requests_confirmed",
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(confirmed_at__isnull=True), name="one_open_offboarding_per_user"
            )
        ]

    def __str__(self) -> str:
        return f"Offboarding of {self.user} requested by {self.requested_by}"


class RoleGrantRequest(models.Model):
    """A trusted role asked for someone by one PKI administrator; a second one confirms (services.role_grants)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="role_grant_requests")
    role = models.CharField(max_length=64)
    reason = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="role_grant_requests_made"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="role_grant_requests_confirmed",
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "role"], condition=models.Q(confirmed_at__isnull=True), name="one_open_grant_per_role"
            )
        ]

    def __str__(self) -> str:
        return f"{self.role} for {self.user}, requested by {self.requested_by}"


class IdentityChangeRequest(models.Model):
    """A change of mailbox, names or directory DN that valid certificates bind; a second person decides.

    Asked for by a PKI administrator, or by the directory log-in (`requested_by` empty, `source`
    says so); confirmed or rejected by another PKI administrator or an approver, never the
    requester nor the employee (services.identity_changes). `changes` is {field: {"old", "new"}}.
    """

    class State(models.TextChoices):
        PENDING = "pending", "waiting for a second person"
        CONFIRMED = "confirmed", "confirmed and applied"
        REJECTED = "rejected", "rejected"
        WITHDRAWN = "withdrawn", "withdrawn by the requester"
        EXPIRED = "expired", "expired undecided"

    employee = models.ForeignKey("enrollment.Employee", on_delete=models.PROTECT, related_name="identity_change_requests")
    changes = models.JSONField()
    reason = models.TextField()
    source = models.CharField(max_length=32, default="admin")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="identity_change_requests_made",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="identity_change_requests_decided",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    revoked_serials = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["employee"], condition=models.Q(state="pending"), name="one_open_identity_change_per_employee"
            )
        ]

    def __str__(self) -> str:
        return f"Identity change #{self.pk} of {self.employee.mail} ({', '.join(sorted(self.changes))})"
