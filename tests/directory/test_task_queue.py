"""Directory work through the real task queue: Celery on the machine's Redis, a worker thread, slapd.

The worker runs in this process (celery.contrib.testing) so that it shares the test
database; the broker is the real Redis at PORTAL_TEST_REDIS_URL (default 127.0.0.1:6379/15; under
pytest-xdist worker gwN uses database 15 - N, its own).
"""

from __future__ import annotations

import os
import time
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from portal_testing import require_redis
from slapd_server import person_dn

from enrollment.models import DirectoryPublication
from enrollment.revocation.services import certificate_revoke
from enrollment.services.requests import certificate_request_approve, certificate_request_create

ALICE = person_dn("alice")
BINARY = "userCertificate;binary"


def _redis_url_of_this_worker(url: str) -> str | None:
    """The broker URL for this process: under pytest-xdist, worker gwN takes database number N
    below the configured one (15, 14, ...), since the fixture flushes its database; None when
    there are more workers than database numbers below it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0) - int(worker[2:])
    return parts._replace(path=f"/{number}").geturl() if number >= 0 else None


CONFIGURED_REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REDIS_URL = _redis_url_of_this_worker(CONFIGURED_REDIS_URL)


@pytest.fixture(scope="module")
def celery_worker_on_redis():
    if REDIS_URL is None:
        pytest.fail(f"{os.environ['PYTEST_XDIST_WORKER']}: no Redis database number of its own below {CONFIGURED_REDIS_URL}")
    require_redis(REDIS_URL)
    import redis
    from celery.contrib.testing.worker import start_worker

    from portal.celery import app

    redis.Redis.from_url(REDIS_URL).flushdb()
    previous = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=REDIS_URL, task_always_eager=False)
    # Earlier tests may have built the producer pool for another broker URL.
    app.amqp._producer_pool = None
    app._pool = None
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield app
    finally:
        app.conf.update(previous)
        app.pool.force_close_all()
        app.amqp._producer_pool = None
        app._pool = None


def _wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the worker")


@pytest.mark.django_db(transaction=True)
def test_worker_publishes_after_issuance_and_removes_after_revocation(
    ldap_settings, directory, celery_worker_on_redis, pki, alice, approver
):
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    request = certificate_request_approve(request_id=request.pk, approver=approver)
    certificate = request.certificate
    assert request.state == "issued"
    assert _wait_for(lambda: directory.values(ALICE, BINARY)) == [bytes(certificate.der)]
    assert _wait_for(lambda: DirectoryPublication.objects.get(certificate=certificate).state == "published")

    certificate_revoke(serial=certificate.serial, actor=approver, reason="key_compromise")
    _wait_for(lambda: DirectoryPublication.objects.get(certificate=certificate).state == "removed")
    assert directory.values(ALICE, BINARY) == []


@pytest.mark.django_db(transaction=True)
def test_periodic_drain_task_on_the_worker_catches_up_after_an_outage(
    ldap_settings, directory, celery_worker_on_redis, pki, alice, approver
):
    from enrollment import tasks

    directory.stop()
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    request = certificate_request_approve(request_id=request.pk, approver=approver)
    certificate = request.certificate
    _wait_for(lambda: DirectoryPublication.objects.get(certificate=certificate).attempts >= 1, timeout=20)
    assert DirectoryPublication.objects.get(certificate=certificate).state == "failed"
    directory.start()
    # Due now rather than after the backoff, as beat would find it some minutes later.
    DirectoryPublication.objects.filter(certificate=certificate).update(next_attempt_at=timezone.now())
    tasks.directory_publications_drain.delay()
    _wait_for(lambda: DirectoryPublication.objects.get(certificate=certificate).state == "published")
    assert directory.values(ALICE, BINARY) == [bytes(certificate.der)]


@pytest.mark.django_db(transaction=True)
def test_a_dead_broker_does_not_hold_up_or_fail_issuance(ldap_settings, directory, pki, alice, approver, settings):
    from portal.celery import app

    previous = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url="redis://127.0.0.1:1/0", task_always_eager=False)
    app.amqp._producer_pool = None
    app._pool = None
    try:
        started = time.monotonic()
        request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
        request = certificate_request_approve(request_id=request.pk, approver=approver)
        elapsed = time.monotonic() - started
    finally:
        app.conf.update(previous)
        app.pool.force_close_all()
        app.amqp._producer_pool = None
        app._pool = None
    assert request.state == "issued"
    assert elapsed < 15, elapsed
    # The outbox row waits for the periodic drain (or publish_pending).
    assert DirectoryPublication.objects.get(certificate=request.certificate).state == "pending"
