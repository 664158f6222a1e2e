"""What the enrollment workflow announces, for the parts it must not know about.

The core work is a direct call (approval issues, revocation marks the CRL stale); these
signals only tell optional parts (the directory, future integrations) that something
happened. Each is sent inside the service's transaction; receivers must do no more than
record or schedule their work with `transaction.on_commit`, so that a failing side effect
never fails, and a rolled-back step never triggers, the workflow.
"""

from django.dispatch import Signal

post_issue_certificate = Signal()
"""Sent by `services.issuance.certificate_issue` for each new certificate.

sender: the Certificate class. Arguments: `certificate` (the saved Certificate row).
"""

post_revoke_certificate = Signal()
"""Sent by `revocation.services.certificate_revoke` after the row is revoked and the CRL marked stale.

sender: the Certificate class. Arguments: `certificate`, `actor` (the user, or None for the system).
"""

post_expire_certificate = Signal()
"""Sent by `services.expiry.certificates_expire` for each certificate it marks expired.

sender: the Certificate class. Arguments: `certificate`.
"""

employee_directory_dn_changed = Signal()
"""Sent when an employee's directory entry (Employee.directory_dn) changed: by a confirmed identity
change (services.identity_changes), an administrator's change (services.employees.employee_update)
or a directory log-in (directory.user_sync). The directory moves the person's certificates to the
new entry and removes them from the old one.

sender: the Employee class. Arguments: `employee` (the saved row, with its new DN).
"""

employee_created = Signal()
"""Sent by `services.employees.employee_create` for each new employee record.

sender: the Employee class. Arguments: `employee` (the saved row), `account_created` (True when
the call made the account too, password-less), `actor` (who created it). The portal links such a
new account to the person's directory entry, so that they log in with their directory password.
"""
