"""State changes the enrollment services announce.

post_approve_request(request, approver): sent inside the approval transaction; the
    receiver issues the certificate.
post_issue_certificate(certificate): sent inside the issuance transaction; receivers
    schedule side effects (directory publishing, mail) with transaction.on_commit.
"""

from django.dispatch import Signal

post_approve_request = Signal()
post_reject_request = Signal()
post_issue_certificate = Signal()
