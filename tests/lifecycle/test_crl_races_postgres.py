"""A revocation racing the CRL's reissue on PostgreSQL: no CRL marked current ever lacks a committed one.

Revocations mark the CA's CRL stale (enrollment/revocation/services.py); a reader of the CRL
signs a new one and clears the mark. Threads released together by a barrier: whatever the
interleaving, once everything has committed, either the mark is still set or the stored CRL
names every revoked certificate, and the CRL served always does.
"""

from __future__ import annotations

import pytest
from cryptography import x509
from django.db import connection
from portal_testing import race

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="races need concurrent writers: PostgreSQL only"),
    pytest.mark.django_db(transaction=True),
]

ROUNDS = 8


def test_a_crl_marked_current_names_every_committed_revocation(pki, alice, approver):
    from enrollment.models import Certificate, CertificateAuthority
    from enrollment.revocation.services import certificate_revoke, crl_current
    from enrollment.services.requests import certificate_request_approve, certificate_request_create

    ca = pki["issuing"]
    for _ in range(ROUNDS):
        certificates = []
        for _ in range(2):
            request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
            certificates.append(certificate_request_approve(request_id=request.pk, approver=approver).certificate)
        outcomes = race(
            *(
                lambda c=c: certificate_revoke(serial=c.serial, actor=approver, reason="superseded")
                for c in certificates
            ),
            lambda: crl_current(ca=ca),
            lambda: crl_current(ca=ca),
        )
        assert [kind for kind, _ in outcomes] == ["ok"] * 4, outcomes
        revoked = set(
            int(serial, 16)
            for serial in Certificate.objects.filter(issuer=ca, status="revoked").values_list("serial", flat=True)
        )
        stored = CertificateAuthority.objects.get(pk=ca.pk)
        if stored.crl_stale_since is None:
            assert {entry.serial_number for entry in x509.load_der_x509_crl(bytes(stored.crl_der))} == revoked
        assert {entry.serial_number for entry in x509.load_der_x509_crl(crl_current(ca=ca))} == revoked
