"""Issuance scales with workers (issue 13): what two workers share is the audit chain's lock, and
an issuance holds it for its appends only.

An issuance's audit events are appended together at the end of its transaction
(`audit_appends_at_end`): key generation, lint, signing, escrow, the pickup copy, the request
and the mail are all done before the lock is asked for, and the chain stays one verifiable
chain when two workers issue at once (PostgreSQL; bench/cases_workers.py measures it).
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from portal_testing import race

from audit import services as audit_services
from audit.chain import audit_chain_breaks
from audit.models import AuditEvent
from audit.services import audit_appends_at_end, audit_record
from enrollment.models import Certificate, CertificateRequest
from enrollment.notifications.models import OutboxMail
from enrollment.services.issuance import certificate_request_issue
from escrow.models import EscrowRecord, PickupCopy

# What one ec-p256 issuance (one dual-use certificate, escrowed) may cost in SQL statements at most.
STATEMENTS_PER_ISSUANCE = 24  # 22 on SQLite, 23 on PostgreSQL (26 before the mail and escrow reads went)


def _chain_intact() -> bool:
    return audit_chain_breaks(AuditEvent.objects.order_by("id").iterator()) is None


def _approved(employee_user, *, submitted_by=None, key_type="ec-p256") -> CertificateRequest:
    """An approved request, without the approval's own issuance (the test issues)."""
    request = CertificateRequest.objects.create(
        employee=employee_user.employee,
        submitted_by=submitted_by or employee_user,
        key_type=key_type,
        certificate_type="sponsor-strict",
    )
    CertificateRequest.objects.filter(pk=request.pk).update(state="approved", decided_at=timezone.now())
    return request


@pytest.mark.django_db
def test_events_recorded_in_the_block_are_appended_together_at_its_end():
    before = AuditEvent.objects.count()
    with transaction.atomic(), audit_appends_at_end() as pending:
        first = audit_record(action="crl.generated", details={"n": 1})
        second = audit_record(action="crl.generated", details={"n": 2})
        assert AuditEvent.objects.count() == before and first.pk is None
        assert pending == [first, second]
    assert AuditEvent.objects.count() == before + 2
    assert first.pk is not None and second.pk == first.pk + 1
    assert second.previous_hash == first.hash and first.timestamp <= second.timestamp
    stored = AuditEvent.objects.get(pk=second.pk)
    assert (stored.hash, stored.details) == (second.hash, {"n": 2})
    assert _chain_intact()


@pytest.mark.django_db
def test_an_exception_in_the_block_appends_nothing():
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError, match="half-way"), transaction.atomic(), audit_appends_at_end():
        audit_record(action="crl.generated")
        raise RuntimeError("half-way")
    assert AuditEvent.objects.count() == before
    audit_record(action="crl.generated")  # the chain goes on from where it was
    assert AuditEvent.objects.count() == before + 1 and _chain_intact()


@pytest.mark.django_db(transaction=True)
def test_the_block_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="needs a transaction"), audit_appends_at_end():
        pass


@pytest.mark.django_db
def test_nested_blocks_append_with_the_outermost():
    with transaction.atomic(), audit_appends_at_end():
        with audit_appends_at_end():
            inner = audit_record(action="crl.generated")
        assert inner.pk is None
    assert inner.pk is not None and _chain_intact()


@pytest.mark.django_db
def test_an_issuance_asks_for_the_chain_lock_once_when_everything_else_is_written(pki, alice, monkeypatch):
    request = _approved(alice)
    seen = []
    real_lock = audit_services._lock_chain

    def lock_chain():
        seen.append(
            {
                "certificates": Certificate.objects.filter(request=request).count(),
                "pickups": PickupCopy.objects.filter(certificate__request=request).count(),
                "escrows": EscrowRecord.objects.filter(certificate__request=request).count(),
                "state": CertificateRequest.objects.get(pk=request.pk).state,
                "mails": OutboxMail.objects.filter(
                    about=f"certificaterequest:{request.pk}", kind="certificate.ready"
                ).count(),
            }
        )
        real_lock()

    monkeypatch.setattr(audit_services, "_lock_chain", lock_chain)
    certificate = certificate_request_issue(request_id=request.pk)
    assert certificate is not None
    assert seen == [{"certificates": 1, "pickups": 1, "escrows": 1, "state": "issued", "mails": 1}]
    actions = list(AuditEvent.objects.order_by("-id").values_list("action", flat=True)[:2])
    assert actions == ["certificate.issued", "escrow.created"]
    assert _chain_intact()


@pytest.mark.django_db
def test_one_issuance_stays_within_its_statement_budget(pki, alice):
    request = _approved(alice)
    certificate_request_issue(request_id=_approved(alice, key_type="ec-p384").pk)  # warm: CA key, agents' caches
    with CaptureQueriesContext(connection) as queries:
        assert certificate_request_issue(request_id=request.pk) is not None
    assert len(queries) <= STATEMENTS_PER_ISSUANCE, "\n".join(query["sql"][:120] for query in queries)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers: PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_two_workers_issuing_at_once_keep_one_chain_and_issue_each_request_once(pki, make_user):
    people = [make_user(f"person{number}") for number in range(16)]
    requests = [_approved(person) for person in people]
    halves = [requests[0::2], requests[1::2]]

    def worker(batch):
        # Each request offered to both workers: a delivery twice issues once.
        return [certificate_request_issue(request_id=request.pk) for request in batch + halves[batch is halves[0]]]

    outcomes = race(lambda: worker(halves[0]), lambda: worker(halves[1]))
    assert [kind for kind, _ in outcomes] == ["ok", "ok"], outcomes
    assert set(CertificateRequest.objects.filter(pk__in=[r.pk for r in requests]).values_list("state", flat=True)) == {
        "issued"
    }
    assert Certificate.objects.filter(request__in=requests).count() == len(requests)
    assert EscrowRecord.objects.filter(certificate__request__in=requests).count() == len(requests)
    issued = list(AuditEvent.objects.filter(action="certificate.issued").order_by("id"))
    assert len(issued) == len(requests)
    # Each issuance's events were appended together: its escrow event right before its certificate's.
    for event in issued:
        escrow = AuditEvent.objects.get(pk=event.pk - 1)
        assert escrow.action == "escrow.created" and escrow.details["certificate"] == event.details["serial"]
    assert _chain_intact()
