"""A revocation racing the CRL's reissue on PostgreSQL: no CRL marked current ever lacks a committed one.

Revocations mark the CA's CRL stale (enrollment/revocation/services.py); a reader of the CRL
signs a new one and clears the mark. Threads released together by a barrier: whatever the
interleaving, once everything has committed, either the mark is still set or the stored CRL
names every revoked certificate, and the CRL served always does.
"""

from __future__ import annotations

import threading

import pytest
from cryptography import x509
from django.db import connection, connections

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="races need concurrent writers: PostgreSQL only"),
    pytest.mark.django_db(transaction=True),
]

ROUNDS = 8


def race(*calls, timeout: float = 60) -> list[tuple[str, object]]:
    barrier = threading.Barrier(len(calls), timeout=timeout)
    outcomes: list[tuple[str, object] | None] = [None] * len(calls)

    def run(index, call):
        try:
            connection.ensure_connection()  # connect before the barrier: released means racing
            barrier.wait()
            outcomes[index] = ("ok", call())
        except Exception as exc:  # noqa: BLE001 - the outcome is what is judged
            outcomes[index] = ("error", exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a racing thread hangs"
    return outcomes


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
