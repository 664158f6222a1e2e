"""Who may call the audit log's API: auditors (and superusers), as in the admin."""

from rest_framework.permissions import BasePermission

from audit.selectors import audit_log_visible_to


class IsAuditor(BasePermission):
    """audit.selectors.audit_log_visible_to decides, for the admin and the API alike."""

    message = "Only auditors can read the audit log."

    def has_permission(self, request, view) -> bool:
        return audit_log_visible_to(user=request.user)
