"""Issuance on Celery workers (issue 13): approval records the decision, a real worker on Redis issues.

The worker runs in this process (celery.contrib.testing, solo pool) so that it shares the test
database, as in tests/directory/test_task_queue.py; the broker is the real Redis at
PORTAL_TEST_ISSUANCE_REDIS_URL (default 127.0.0.1:6379/11), on a queue named after this process:
nothing is flushed, and two runs at once (two checkouts, xdist workers) never take each other's tasks. Approval "with a broker"
is the setting CELERY_BROKER_URL (PORTAL_BROKER_URL); the worker's app is pointed at the same.

The path without a broker (issued inside the approving call) is what every other test runs.
"""

from __future__ import annotations

import base64
import os
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from portal_testing import PASSWORD, require_redis
from worker_testing import in_process_worker

from audit.chain import audit_chain_breaks
from audit.models import AuditEvent
from enrollment.models import Certificate, CertificateRequest
from enrollment.services import issuance
from enrollment.services.requests import certificate_request_approve, certificate_request_create
from escrow.models import EscrowRecord, PickupCopy

CONFIGURED_REDIS_URL = os.environ.get("PORTAL_TEST_ISSUANCE_REDIS_URL", "redis://127.0.0.1:6379/11")


REDIS_URL = CONFIGURED_REDIS_URL


@pytest.fixture(scope="module")
def issuance_worker():
    require_redis(REDIS_URL)
    with in_process_worker(broker_url=REDIS_URL, name="issuance-test") as app:
        yield app


@pytest.fixture
def with_broker(settings, issuance_worker):
    """Approval as with PORTAL_BROKER_URL set; retries quick (0.1 s, 0.2 s) so that the failure tests are short."""
    settings.CELERY_BROKER_URL = REDIS_URL
    settings.PORTAL_ISSUANCE_RETRY_SECONDS = 0.1
    settings.PORTAL_ISSUANCE_ATTEMPTS = 3
    return issuance_worker


def _wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the worker")


def _state(request) -> str:
    return CertificateRequest.objects.get(pk=request.pk).state


def _settled(request) -> bool:
    return _state(request) in ("issued", "failed")


def _chain_intact() -> bool:
    return audit_chain_breaks(AuditEvent.objects.order_by("id").iterator()) is None


def _actions(request) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="enrollment.certificaterequest", object_id=str(request.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )


@pytest.mark.django_db(transaction=True)
def test_approval_returns_approved_and_the_worker_issues_with_escrow(with_broker, pki, alice, approver):
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    decided = certificate_request_approve(request_id=request.pk, approver=approver)
    assert decided.state == "approved" and decided.decided_by == approver

    _wait_for(lambda: _settled(request))
    request.refresh_from_db()
    assert request.state == "issued", request.reason
    (certificate,) = Certificate.objects.filter(request=request)
    assert EscrowRecord.objects.filter(certificate=certificate).exists()
    assert PickupCopy.objects.filter(certificate=certificate).exists()
    assert _actions(request) == ["request.created", "request.approved"]
    assert AuditEvent.objects.filter(action="certificate.issued", object_id=str(certificate.pk)).exists()
    assert _chain_intact()


@pytest.mark.django_db(transaction=True)
def test_the_task_delivered_twice_issues_one_certificate(with_broker, pki, alice, approver):
    from enrollment import tasks

    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    certificate_request_approve(request_id=request.pk, approver=approver)
    tasks.certificate_request_issue.delay(request_id=request.pk)  # a second delivery (redelivery, the sweep)
    tasks.certificate_request_issue.delay(request_id=request.pk)
    _wait_for(lambda: _settled(request))
    time.sleep(0.5)  # the duplicates have run by now (one solo worker, in order)
    assert _state(request) == "issued"
    assert Certificate.objects.filter(request=request).count() == 1
    assert AuditEvent.objects.filter(action="certificate.issued").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_prepared_issuance_finding_the_request_issued_writes_nothing(pki, alice, approver):
    """Two workers with the same request: the second, prepared while the first signed, finds it issued."""
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    CertificateRequest.objects.filter(pk=request.pk).update(state="approved", decided_at=timezone.now())
    request.refresh_from_db()
    late = issuance.issuance_prepare(request=request)
    assert issuance.certificate_request_issue(request_id=request.pk) is not None
    events = AuditEvent.objects.count()
    assert issuance._issuance_record(request_id=request.pk, prepared=late) is None
    assert Certificate.objects.filter(request=request).count() == 1 and AuditEvent.objects.count() == events


@pytest.mark.django_db(transaction=True)
def test_a_crash_mid_way_is_retried_then_failed_with_the_reason_and_leaves_no_rows(
    with_broker, pki, alice, approver, monkeypatch
):
    calls = []

    def crash(**kwargs):  # after the certificate and its pickup copy were written, before the escrow
        calls.append(kwargs["certificate"].serial)
        raise RuntimeError("worker failure in the middle of the issuance")

    monkeypatch.setattr(issuance, "escrow_record_create", crash)
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    certificate_request_approve(request_id=request.pk, approver=approver)
    _wait_for(lambda: _settled(request))
    request.refresh_from_db()
    assert len(calls) == 3  # PORTAL_ISSUANCE_ATTEMPTS
    assert request.state == "failed"
    assert request.reason == "Issuance failed unexpectedly after 3 attempts (RuntimeError); see the server log."
    assert not Certificate.objects.filter(request=request).exists()
    assert not Certificate.objects.filter(serial__in=calls).exists()
    assert not PickupCopy.objects.exists() and not EscrowRecord.objects.exists()
    assert _actions(request) == ["request.created", "request.approved", "request.failed"]
    assert AuditEvent.objects.get(action="request.failed").details == {"reason": request.reason}
    assert _chain_intact()


@pytest.mark.django_db(transaction=True)
def test_a_transient_failure_is_retried_and_then_issues(with_broker, pki, alice, approver, monkeypatch):
    real = issuance.escrow_record_create
    calls = []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("HSM or database briefly unreachable")
        return real(**kwargs)

    monkeypatch.setattr(issuance, "escrow_record_create", flaky)
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    certificate_request_approve(request_id=request.pk, approver=approver)
    _wait_for(lambda: _settled(request))
    assert _state(request) == "issued" and len(calls) == 2
    (certificate,) = Certificate.objects.filter(request=request)
    assert EscrowRecord.objects.filter(certificate=certificate).count() == 1
    assert PickupCopy.objects.count() == 1
    assert _chain_intact()


@pytest.mark.django_db(transaction=True)
def test_a_refusal_fails_at_once_without_retries(with_broker, pki, alice, approver):
    """No active recovery agent: nothing a retry would change; `failed` with the service's reason."""
    from escrow.models import KeyRecoveryAgent

    KeyRecoveryAgent.objects.update(is_active=False)
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    certificate_request_approve(request_id=request.pk, approver=approver)
    _wait_for(lambda: _settled(request))
    request.refresh_from_db()
    assert request.state == "failed" and "No active key recovery agent" in request.reason
    assert not Certificate.objects.exists() and not PickupCopy.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_sweep_requeues_a_request_whose_task_was_lost(with_broker, pki, alice, bob, approver, monkeypatch):
    from enrollment import tasks

    monkeypatch.setattr(tasks, "certificate_request_issue_soon", lambda **kwargs: None)  # the message is lost
    lost = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    recent = certificate_request_create(employee=bob.employee, submitted_by=bob, key_type="ec-p256")
    certificate_request_approve(request_id=lost.pk, approver=approver)
    certificate_request_approve(request_id=recent.pk, approver=approver)
    monkeypatch.undo()
    time.sleep(0.3)
    assert _state(lost) == "approved" and _state(recent) == "approved"
    # The lost one was approved long ago (a worker died); the recent one may still be in the queue.
    CertificateRequest.objects.filter(pk=lost.pk).update(decided_at=timezone.now() - timedelta(hours=1))
    assert issuance.issuance_stuck_requests() == [lost.pk]

    tasks.issuance_sweep.delay()  # as beat sends it ("issuance-sweep")
    _wait_for(lambda: _settled(lost))
    assert _state(lost) == "issued" and _state(recent) == "approved"
    assert Certificate.objects.filter(request=lost).count() == 1


def test_beat_runs_the_sweep():
    from portal.celery import app

    entry = app.conf.beat_schedule["issuance-sweep"]
    assert entry["task"] == "enrollment.issuance_sweep" and entry["schedule"] <= 600


@pytest.mark.django_db(transaction=True)
def test_api_approve_answers_202_approved_with_a_broker(with_broker, pki, alice, approver):
    from rest_framework.test import APIClient

    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"approver:{PASSWORD}".encode()).decode())
    response = client.post(f"/api/v1/requests/{request.pk}/approve/")
    assert response.status_code == 202, response.content
    assert response.json()["state"] == "approved"
    _wait_for(lambda: _settled(request))
    assert client.get(f"/api/v1/requests/{request.pk}/").json()["state"] == "issued"


@pytest.mark.django_db
def test_api_approve_answers_200_issued_without_a_broker(pki, alice, approver):
    from rest_framework.test import APIClient

    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"approver:{PASSWORD}".encode()).decode())
    response = client.post(f"/api/v1/requests/{request.pk}/approve/")
    assert response.status_code == 200 and response.json()["state"] == "issued"


BULK = 12


@pytest.mark.django_db(transaction=True)
def test_admin_bulk_approve_returns_at_once_with_one_line_and_the_worker_issues_all(
    with_broker, pki, client, make_user, approver
):
    requests = []
    for number in range(BULK):
        user = make_user(f"employee{number}", given_name="Emma", surname=f"Number{number}")
        requests.append(certificate_request_create(employee=user.employee, submitted_by=user, key_type="rsa-3072"))
    assert client.login(username="approver", password=PASSWORD)

    started = time.monotonic()
    response = client.post(
        "/admin/enrollment/certificaterequest/",
        {"action": "approve_selected", "_selected_action": [r.pk for r in requests]},
        follow=True,
    )
    answered = time.monotonic() - started
    issued_when_answered = CertificateRequest.objects.filter(state="issued").count()

    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == [f"{BULK} requests approved; issuing in the background (the queue shows how far)."]
    # Twelve RSA-3072 key generations take seconds on two cores; the page does not wait for them.
    assert answered < 3.0, answered
    assert issued_when_answered < BULK
    _wait_for(lambda: CertificateRequest.objects.filter(state="issued").count() == BULK, timeout=60)
    assert Certificate.objects.count() == BULK == EscrowRecord.objects.count() == PickupCopy.objects.count()
    assert _chain_intact()


@pytest.mark.django_db(transaction=True)
def test_a_request_whose_owner_left_before_the_worker_ran_fails(with_broker, pki, alice, approver, monkeypatch):
    from enrollment import tasks

    monkeypatch.setattr(tasks, "certificate_request_issue_soon", lambda **kwargs: None)  # still in the queue
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    certificate_request_approve(request_id=request.pk, approver=approver)
    monkeypatch.undo()
    type(alice).objects.filter(pk=alice.pk).update(is_active=False)  # offboarded meanwhile
    tasks.certificate_request_issue.delay(request_id=request.pk)
    _wait_for(lambda: _settled(request))
    request.refresh_from_db()
    assert request.state == "failed" and "was deactivated" in request.reason
    assert not Certificate.objects.exists()
