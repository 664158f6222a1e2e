"""State changes the enrollment services announce.

post_approve_request(request, approver): sent inside the approval transaction; the
    receiver issues the certificate.
post_issue_certificate(certificate): sent inside the issuance transaction; receivers
    schedule side effects (directory publishing, mail) with transaction.on_commit.
post_revoke_certificate(certificate, actor): sent inside the revocation transaction; the
    receivers reissue the CRL and schedule the removal from the directory.
post_expire_certificate(certificate): sent when the expiry job marks a certificate expired.
"""

from django.dispatch import Signal

post_approve_request = Signal()
post_reject_request = Signal()
post_issue_certificate = Signal()
post_revoke_certificate = Signal()
post_expire_certificate = Signal()
