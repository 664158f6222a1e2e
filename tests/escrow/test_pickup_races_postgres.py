"""Downloads racing each other and a revocation on PostgreSQL (the build runs outside the transaction).

Each download is counted and audited once, with its own number; a download racing a revocation
is either counted before the revocation or refused, never handed out uncounted or after it.
"""

from __future__ import annotations

import pytest
from django.db import connection
from portal_testing import race

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="races need concurrent writers: PostgreSQL only"),
    pytest.mark.django_db(transaction=True),
]

PASSPHRASE = "a long download passphrase"
ROUNDS = 5


def issue_for(user, approver):
    from enrollment.services.requests import certificate_request_approve, certificate_request_create

    request = certificate_request_create(employee=user.employee, submitted_by=user, key_type="ec-p256")
    return certificate_request_approve(request_id=request.pk, approver=approver).certificate


def download(user, serial):
    from escrow.services.pickups import pickup_copy_export

    return pickup_copy_export(actor=user, serial=serial, passphrase=PASSPHRASE, fmt="modern")


def audited(certificate, action) -> list:
    from audit.models import AuditEvent

    return list(AuditEvent.objects.filter(action=action, object_id=str(certificate.pk)).order_by("pk"))


def test_concurrent_downloads_are_each_counted_once(pki, alice, approver):
    from audit.events import AuditAction
    from escrow.models import PickupCopy

    certificate = issue_for(alice, approver)
    outcomes = race(*[lambda: download(alice, certificate.serial)] * 4)
    assert [kind for kind, _ in outcomes] == ["ok"] * 4, outcomes
    assert PickupCopy.objects.get(certificate=certificate).download_count == 4
    numbers = [event.details["download"] for event in audited(certificate, AuditAction.CERTIFICATE_PKCS12_DOWNLOADED)]
    assert sorted(numbers) == [1, 2, 3, 4]


def test_a_download_racing_a_revocation_is_counted_before_it_or_refused(pki, alice, approver):
    from audit.events import AuditAction
    from core.exceptions import InvalidState, PickupUnavailable
    from enrollment.revocation.services import certificate_revoke

    for _ in range(ROUNDS):
        certificate = issue_for(alice, approver)
        outcomes = race(
            lambda c=certificate: download(alice, c.serial),
            lambda c=certificate: certificate_revoke(serial=c.serial, actor=alice, reason="key_compromise"),
        )
        (download_kind, download_value), (revoke_kind, revoke_value) = outcomes
        assert revoke_kind == "ok", revoke_value
        downloads = audited(certificate, AuditAction.CERTIFICATE_PKCS12_DOWNLOADED)
        revocation = audited(certificate, AuditAction.CERTIFICATE_REVOKED)
        if download_kind == "ok":
            assert len(downloads) == 1 and downloads[0].pk < revocation[0].pk
        else:
            assert isinstance(download_value, (PickupUnavailable, InvalidState)), download_value
            assert downloads == []
