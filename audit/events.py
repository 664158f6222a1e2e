"""Every audit event type, declared once: `audit_record` refuses any other.

The value is what the log stores (and auditors filter on, e.g. `recovery.*`); it never
changes once events carry it, or old events would no longer match their filters.
"""

from django.db import models


class AuditAction(models.TextChoices):
    # audit
    AUDIT_CHAIN_KEYED = "audit.chain_keyed", "audit chain switched to keyed hashes (HMAC)"
    AUDIT_EXPORTED = "audit.exported", "audit log exported"
    # auth
    AUTH_ACCOUNT_CHANGED = "auth.account_changed", "account changed by an administrator"
    AUTH_ACCOUNT_CREATED = "auth.account_created", "account created by an administrator"
    AUTH_DIRECTORY_LINKED = "auth.directory_linked", "local account linked to a directory entry"
    AUTH_LOCKED_OUT = "auth.locked_out", "log-in locked after repeated failures"
    AUTH_LOGIN = "auth.login", "log-in"
    AUTH_LOGGED_OUT_EVERYWHERE = "auth.logged_out_everywhere", "every session of the account ended"
    AUTH_LOGIN_FAILED = "auth.login_failed", "failed log-in"
    AUTH_REAUTHENTICATED = "auth.reauthenticated", "password given again before a key release"
    AUTH_PASSWORD_SET = "auth.password_set", "password set by an administrator"
    AUTH_RECOVERY_CODE_USED = "auth.recovery_code_used", "second factor: recovery code used"
    AUTH_ROLES_CHANGED = "auth.roles_changed", "roles changed by the directory"
    AUTH_ROLE_GRANT_REQUESTED = "auth.role_grant_requested", "trusted role requested for someone"
    AUTH_ROLE_GRANTED = "auth.role_granted", "trusted role granted (second person)"
    AUTH_ROLE_REVOKED = "auth.role_revoked", "trusted role taken away"
    AUTH_SECOND_FACTOR_ENROLLED = "auth.second_factor_enrolled", "second factor enrolled"
    AUTH_SECOND_FACTOR_FAILED = "auth.second_factor_failed", "wrong second-factor code"
    AUTH_SECOND_FACTOR_RESET = "auth.second_factor_reset", "second factor reset by an administrator"
    AUTH_UNLOCKED = "auth.unlocked", "locked log-in unlocked by an administrator"
    # ca
    CA_CREATED = "ca.created", "CA created"
    CA_KEY_GENERATED = "ca.key_generated", "CA key generated in the HSM"
    # certificate
    CERTIFICATE_EXPIRED = "certificate.expired", "certificate expired"
    CERTIFICATE_EXPIRY_NOTICE_SENT = "certificate.expiry_notice_sent", "expiry notice mailed"
    CERTIFICATE_ISSUED = "certificate.issued", "certificate issued"
    CERTIFICATE_PKCS12_DOWNLOADED = "certificate.pkcs12_downloaded", "PKCS#12 downloaded"
    CERTIFICATE_REVOKED = "certificate.revoked", "certificate revoked"
    CERTIFICATE_REVOCATION_FAILED = "certificate.revocation_failed", "revocation NOT done (failed)"
    # crl
    CRL_GENERATED = "crl.generated", "CRL signed"
    # directory
    DIRECTORY_CA_PUBLISH_FAILED = "directory.ca_publish_failed", "CA entry publication failed"
    DIRECTORY_CA_PUBLISHED = "directory.ca_published", "CA entry published"
    DIRECTORY_PUBLISH_FAILED = "directory.publish_failed", "directory publication failed"
    DIRECTORY_PUBLISHED = "directory.published", "published to the directory"
    DIRECTORY_SUPERSEDED = "directory.superseded", "directory publication superseded"
    DIRECTORY_UNPUBLISH_FAILED = "directory.unpublish_failed", "directory removal failed"
    DIRECTORY_UNPUBLISHED = "directory.unpublished", "removed from the directory"
    # employee
    ENROLLMENT_BATCH_FINISHED = "enrollment.batch_finished", "bulk enrollment finished writing its rows"
    ENROLLMENT_BATCH_STARTED = "enrollment.batch_started", "bulk enrollment started"
    EMPLOYEE_CHANGED = "employee.changed", "employee changed"
    EMPLOYEE_CREATED = "employee.created", "employee created"
    EMPLOYEE_IDENTITY_CHANGE_CONFIRMED = "employee.identity_change_confirmed", "identity change confirmed (second person)"
    EMPLOYEE_IDENTITY_CHANGE_EXPIRED = "employee.identity_change_expired", "identity change request expired"
    EMPLOYEE_IDENTITY_CHANGE_REJECTED = "employee.identity_change_rejected", "identity change rejected"
    EMPLOYEE_IDENTITY_CHANGE_REQUESTED = "employee.identity_change_requested", "identity change requested"
    EMPLOYEE_IDENTITY_CHANGE_WITHDRAWN = "employee.identity_change_withdrawn", "identity change withdrawn"
    EMPLOYEE_OFFBOARDED = "employee.offboarded", "employee offboarded"
    EMPLOYEE_OFFBOARDING_REQUESTED = "employee.offboarding_requested", "offboarding of a trusted account requested"
    # escrow
    ESCROW_CREATED = "escrow.created", "key escrowed"
    ESCROW_REWRAPPED = "escrow.rewrapped", "escrow re-encrypted"
    # kra
    KRA_CREATED = "kra.created", "key recovery agent created"
    KRA_DEACTIVATED = "kra.deactivated", "key recovery agent deactivated"
    KRA_IMPORTED = "kra.imported", "key recovery agent imported"
    # ocsp
    OCSP_RESPONDER_ISSUED = "ocsp.responder_issued", "OCSP responder certificate issued"
    # recovery
    RECOVERY_APPROVED = "recovery.approved", "recovery approved"
    RECOVERY_COMPLETED = "recovery.completed", "recovery completed"
    RECOVERY_DOWNLOADED = "recovery.downloaded", "recovered key downloaded"
    RECOVERY_REJECTED = "recovery.rejected", "recovery rejected"
    RECOVERY_REQUESTED = "recovery.requested", "recovery requested"
    RECOVERY_WITHDRAWN = "recovery.withdrawn", "recovery withdrawn"
    RECOVERY_EXPIRED = "recovery.expired", "approved recovery expired"
    # request
    REQUEST_APPROVED = "request.approved", "request approved"
    REQUEST_AUTO_APPROVED = "request.auto_approved", "request approved by policy"
    REQUEST_CREATED = "request.created", "request created"
    REQUEST_FAILED = "request.failed", "issuance failed"
    REQUEST_REJECTED = "request.rejected", "request rejected"
    # token
    TOKEN_CREATED = "token.created", "API token created"
    TOKEN_REVOKED = "token.revoked", "API token revoked"
