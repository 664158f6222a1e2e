"""Rows with known numbers for every panel of the admin dashboard (tests/portal/test_dashboard.py, the browser test).

Written directly with the ORM, as the services leave them: the dashboard reads rows, and issuing
dozens of certificates for real would take the suite minutes.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest
from django.utils import timezone

_serials = count(1)


def make_certificate(
    pki, employee, *, created_days_ago=200.0, expires_in_days=300, status="valid", reason="", revoked_hours_ago=None
):
    """A certificate row as issuance leaves it (written directly: the dashboard reads rows, not keys)."""
    from enrollment.models import Certificate, CertificateRequest

    now = timezone.now()
    number = next(_serials)
    request = CertificateRequest.objects.create(employee=employee, submitted_by=employee.user, state="issued")
    certificate = Certificate.objects.create(
        request=request,
        employee=employee,
        issuer=pki["issuing"],
        serial=f"{number:040x}",
        subject=f"CN=c{number}",
        mailbox=employee.mail,
        key_type="ec-p256",
        certificate_type="sponsor-strict",
        not_before=now - timedelta(days=2),
        not_after=now + timedelta(days=expires_in_days),
        fingerprint_sha256=f"{number:064x}",
        der=b"\x30\x00",
        status=status,
        revocation_reason=reason,
        revoked_at=now - timedelta(hours=revoked_hours_ago) if revoked_hours_ago is not None else None,
    )
    Certificate.objects.filter(pk=certificate.pk).update(created_at=now - timedelta(days=created_days_ago))
    return certificate


@pytest.fixture
def seeded(pki, alice, bob, settings, tmp_path):
    """Known numbers for every panel (each name below is the count the dashboard must show)."""
    from enrollment.models import CertificateRequest, DirectoryPublication
    from enrollment.revocation.services import crl_generate
    from enrollment.selectors_dashboard import issued_weeks
    from escrow.models import PickupCopy, RecoveryRequest

    settings.PORTAL_AUDIT_ANCHOR_FILE = tmp_path / "anchors.jsonl"
    now = timezone.now()
    weeks = issued_weeks(now=now)
    start = timezone.make_aware(timezone.datetime.combine(weeks[-1], timezone.datetime.min.time()))
    into_this_week = (now - start) / 2  # always inside the current week, however early in it we are
    days_ago = {  # week index from the current one back -> how many certificates issued then
        0: 2,
        1: 3,
        5: 1,
        11: 1,
        12: 1,  # 12 weeks back is outside the chart
    }
    made = []
    for back, number in days_ago.items():
        for _ in range(number):
            created = (now - start - into_this_week) if back == 0 else (now - start) + timedelta(days=7 * back - 3)
            made.append(make_certificate(pki, alice.employee, created_days_ago=created / timedelta(days=1)))
    # Expiry: two within 30 days, one within 60, one within 90; a revoked one within 30 does not count.
    for days in (10, 20, 45, 80):
        made.append(make_certificate(pki, bob.employee, expires_in_days=days))
    crl_generate(ca=pki["issuing"])  # the current CRL; below, one revocation after it
    make_certificate(
        pki, bob.employee, expires_in_days=10, status="revoked", reason="key_compromise", revoked_hours_ago=5
    )
    make_certificate(pki, bob.employee, status="revoked", reason="superseded", revoked_hours_ago=5)
    late = make_certificate(pki, bob.employee, status="revoked", reason="key_compromise")
    late.revoked_at = timezone.now() + timedelta(seconds=5)  # after the CRL was signed
    late.save(update_fields=["revoked_at"])
    # Pickups: one waiting, one missed, one downloaded.
    for certificate, expires, downloads in ((made[0], 3, 0), (made[1], -1, 0), (made[2], 3, 1)):
        PickupCopy.objects.create(
            certificate=certificate, sealed_key=b"x", expires_at=now + timedelta(days=expires), download_count=downloads
        )
    # Requests beyond the issued ones: pending 2, approved 1, failed 1, rejected 1.
    for state, certificate_type in (
        ("pending", "sponsor-strict"),
        ("pending", "mailbox-strict"),
        ("approved", "sponsor-strict"),
        ("failed", "sponsor-strict"),
        ("rejected", "sponsor-strict"),
    ):
        CertificateRequest.objects.create(
            employee=alice.employee, submitted_by=alice, state=state, certificate_type=certificate_type
        )
    # Recoveries: pending 1, approved 1, completed 1.
    for status, certificate in (("pending", made[3]), ("approved", made[4]), ("completed", made[5])):
        RecoveryRequest.objects.create(
            certificate=certificate,
            employee=certificate.employee,
            purpose="own-key",
            reason="lost",
            requested_by=alice,
            recipient=alice,
            status=status,
            required_approvals=2,
        )
    # Directory: failed 2, remove_failed 1, published 1.
    for state, certificate in (
        ("failed", made[0]),
        ("failed", made[1]),
        ("remove_failed", made[2]),
        ("published", made[3]),
    ):
        DirectoryPublication.objects.create(certificate=certificate, state=state)
    return {
        "issued_week": [1] + [0] * 5 + [1] + [0] * 3 + [3, 2],  # oldest first: 11 weeks back .. this week
        "weeks": weeks,
    }
