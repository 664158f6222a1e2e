from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from escrow.models import EscrowRecord, PickupCopy


def test_expired_pickup_copies_are_purged_but_escrow_stays(pki, issued, settings):
    assert issued.pickup.expires_at - timezone.now() > timedelta(days=settings.PORTAL_PICKUP_DAYS - 1)
    call_command("purge_expired_pickups")
    assert PickupCopy.objects.filter(pk=issued.pickup.pk).exists()

    PickupCopy.objects.filter(pk=issued.pickup.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    call_command("purge_expired_pickups")

    assert not PickupCopy.objects.filter(certificate=issued).exists()
    assert EscrowRecord.objects.filter(certificate=issued).exists()


def test_pickup_window_follows_the_setting(pki, alice, approver, settings):
    from enrollment.services.requests import certificate_request_approve, certificate_request_create

    settings.PORTAL_PICKUP_DAYS = 3
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    certificate = certificate_request_approve(request_id=request.pk, approver=approver).certificate
    remaining = certificate.pickup.expires_at - timezone.now()
    assert timedelta(days=2, hours=23) < remaining <= timedelta(days=3)
