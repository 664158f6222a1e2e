"""A batch approved by policy is issued by a real Celery worker on Redis (DB 7 unless configured).

`manage.py enroll --csv` with PORTAL_ENROLLMENT_AUTO_APPROVE on and a broker returns once the
rows are written, every request `approved`; the worker (in this process, solo pool, as in
tests/lifecycle/test_issuance_worker.py, on a queue of this process's own) issues each once, with
its escrow; the batch's progress counts them; the audit chain verifies afterwards.
"""

from __future__ import annotations

import io
import os
import time

import pytest
from django.core.management import call_command
from portal_testing import require_redis
from worker_testing import in_process_worker

from audit.chain import audit_chain_breaks
from audit.models import AuditEvent
from enrollment.models import Certificate, CertificateRequest, EnrollmentBatch
from escrow.models import EscrowRecord

REDIS_URL = os.environ.get("PORTAL_TEST_BULK_REDIS_URL", "redis://127.0.0.1:6379/7")
PEOPLE = 12


@pytest.fixture(scope="module")
def worker():
    require_redis(REDIS_URL)
    with in_process_worker(broker_url=REDIS_URL, name="bulk-test") as app:
        yield app


@pytest.mark.django_db(transaction=True)
def test_a_batch_approved_by_policy_is_issued_by_the_worker(worker, settings, pki, pki_admin, tmp_path):
    settings.CELERY_BROKER_URL = REDIS_URL
    settings.PORTAL_MAIL_DOMAINS = ["example.org"]
    settings.PORTAL_ENROLLMENT_AUTO_APPROVE = True
    path = tmp_path / "people.csv"
    path.write_text(
        "mail,given_name,surname\n" + "".join(f"p{n}@example.org,Given{n},Surname{n}\n" for n in range(PEOPLE))
    )
    out = io.StringIO()

    call_command(
        "enroll", "--csv", str(path), "--actor", "pkiadmin", "--key-type", "ec-p256", "--progress", "off", stdout=out
    )

    assert f"{PEOPLE} employees enrolled" in out.getvalue() and "the workers issue them" in out.getvalue()
    batch = EnrollmentBatch.objects.get()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and batch.progress()["issued"] < PEOPLE:
        time.sleep(0.2)
    progress = batch.progress()
    assert progress["issued"] == PEOPLE and progress["approved"] == progress["failed"] == 0, progress
    certificates = Certificate.objects.filter(request__batch=batch)
    assert certificates.count() == PEOPLE  # one each: no duplicate
    assert EscrowRecord.objects.filter(certificate__in=certificates).count() == PEOPLE
    assert AuditEvent.objects.filter(action="request.auto_approved").count() == PEOPLE
    assert audit_chain_breaks(AuditEvent.objects.order_by("id").iterator()) is None
    assert set(CertificateRequest.objects.filter(batch=batch).values_list("decided_by", flat=True)) == {None}
