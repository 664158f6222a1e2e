"""Races on PostgreSQL (issue 12, findings 1-2): threads released at one instant by a barrier.

Each race runs ROUNDS rounds and must show the one outcome it must, every round: a
revocation is never lost to a renewal, one renewal per certificate, one pending request per
person, one issuance per approval, never more tokens than the cap. The lock order and the
retries these rest on are described in core/db.py.

PostgreSQL only: SQLite lets one writer in at a time, so nothing here can race there (the
constraints' 409s are tested on both, in test_only_one_constraints.py).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from django.db import connection
from django.utils import timezone
from portal_testing import race

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="races need concurrent writers: PostgreSQL only (SQLite serializes every write transaction)",
    ),
    pytest.mark.django_db(transaction=True),
]

ROUNDS = 20


def errors_of(outcomes) -> list[Exception]:
    return [value for kind, value in outcomes if kind == "error"]


def results_of(outcomes) -> list:
    return [value for kind, value in outcomes if kind == "ok"]


@pytest.fixture
def renewable(settings):
    settings.PORTAL_RENEWAL_AUTO_APPROVE = True
    settings.PORTAL_RENEWAL_WINDOW_DAYS = 100_000  # every certificate is inside its renewal window


def issue_for(user, approver):
    from enrollment.services.requests import certificate_request_approve, certificate_request_create

    request = certificate_request_create(employee=user.employee, submitted_by=user, key_type="ec-p256")
    request = certificate_request_approve(request_id=request.pk, approver=approver)
    assert request.state == "issued", request.reason
    return request.certificate


def on_crl(certificate) -> bool:
    from enrollment.models import CertificateAuthority
    from enrollment.revocation.services import crl_current

    crl = x509.load_der_x509_crl(crl_current(ca=CertificateAuthority.objects.get(pk=certificate.issuer_id)))
    return crl.get_revoked_certificate_by_serial_number(int(certificate.serial, 16)) is not None


def test_a_revocation_is_never_lost_to_a_renewal(pki, alice, approver, renewable):
    from core.exceptions import InvalidState, TryAgain
    from enrollment.models import Certificate, CertificateRequest
    from enrollment.revocation.services import certificate_revoke
    from enrollment.services.requests import certificate_renewal_request

    tally = {"renewal refused": 0, "renewal issued first": 0, "revocation retried by the caller": 0}
    for _ in range(ROUNDS):
        certificate = issue_for(alice, approver)
        tries = []

        def revoke(serial=certificate.serial, tries=tries):
            # The caller's side of the contract: a 503 TryAgain is retried, anything else is final.
            for _attempt in range(3):
                try:
                    return certificate_revoke(serial=serial, actor=alice, reason="key_compromise")
                except TryAgain as exc:
                    tries.append(exc)
            raise AssertionError("revocation refused three times")

        outcomes = race(revoke, lambda serial=certificate.serial: certificate_renewal_request(serial=serial, user=alice))
        (revoke_kind, revoked), (renew_kind, renewal) = outcomes
        assert revoke_kind == "ok", f"the revocation failed: {revoked!r}"
        certificate.refresh_from_db()
        assert certificate.status == Certificate.Status.REVOKED
        assert certificate.revocation_reason == "key_compromise"
        assert on_crl(certificate), "revoked but not on the CRL"
        renewals = CertificateRequest.objects.filter(renewal_of=certificate)
        if renew_kind == "error":
            assert isinstance(renewal, InvalidState), f"the renewal failed otherwise than refused: {renewal!r}"
            assert "revoked" in renewal.message
            assert not renewals.exists()
            tally["renewal refused"] += 1
        else:
            # The renewal got the certificate first: it finished before the revocation began.
            assert renewal.state == CertificateRequest.State.ISSUED, renewal.reason
            assert list(renewals) == [renewal]
            assert renewal.certificate.status == Certificate.Status.VALID
            assert renewal.certificate.serial != certificate.serial
            tally["renewal issued first"] += 1
        tally["revocation retried by the caller"] += bool(tries)
    print(f"revoke vs renew, {ROUNDS} rounds: {tally}")


def test_two_renewals_of_one_certificate_issue_one(pki, alice, approver, renewable):
    from core.exceptions import InvalidState
    from enrollment.models import Certificate, CertificateRequest
    from enrollment.services.requests import certificate_renewal_request

    for _ in range(ROUNDS):
        certificate = issue_for(alice, approver)
        renew = lambda serial=certificate.serial: certificate_renewal_request(serial=serial, user=alice)  # noqa: E731
        outcomes = race(renew, renew)
        (renewal,) = results_of(outcomes)
        (refused,) = errors_of(outcomes)
        assert isinstance(refused, InvalidState) and "renewed already" in refused.message, repr(refused)
        assert renewal.state == CertificateRequest.State.ISSUED, renewal.reason
        assert list(CertificateRequest.objects.filter(renewal_of=certificate)) == [renewal]
        assert Certificate.objects.filter(request__renewal_of=certificate).count() == 1


def test_two_requests_of_one_person_leave_one_pending(pki, bob):
    from django.core.exceptions import ValidationError

    from enrollment.models import CertificateRequest
    from enrollment.services.requests import certificate_request_create

    def request():
        return certificate_request_create(employee=bob.employee, submitted_by=bob, key_type="ec-p256")

    for _ in range(ROUNDS):
        outcomes = race(request, request)
        (created,) = results_of(outcomes)
        (refused,) = errors_of(outcomes)
        assert isinstance(refused, ValidationError) and "pending request" in " ".join(refused.messages)
        pending = CertificateRequest.objects.filter(employee=bob.employee, state=CertificateRequest.State.PENDING)
        assert list(pending) == [created]
        pending.update(state=CertificateRequest.State.REJECTED, reason="race round over")


def test_two_approvers_of_one_request_issue_one_certificate(pki, bob, approver, approver2):
    from core.exceptions import InvalidState
    from enrollment.models import Certificate, CertificateRequest
    from enrollment.services.requests import certificate_request_approve, certificate_request_create

    for _ in range(ROUNDS):
        request = certificate_request_create(employee=bob.employee, submitted_by=bob, key_type="ec-p256")
        outcomes = race(
            lambda pk=request.pk: certificate_request_approve(request_id=pk, approver=approver),
            lambda pk=request.pk: certificate_request_approve(request_id=pk, approver=approver2),
        )
        (approved,) = results_of(outcomes)
        (refused,) = errors_of(outcomes)
        assert isinstance(refused, InvalidState) and "not pending" in refused.message, repr(refused)
        assert approved.state == CertificateRequest.State.ISSUED, approved.reason
        assert Certificate.objects.filter(request=request).count() == 1


def test_parallel_token_creations_never_pass_the_cap(db, alice):
    from django.core.exceptions import ValidationError

    from portal.models import ApiToken
    from portal.services import MAX_ACTIVE_TOKENS, api_token_create, credential_stamp

    racers, free = 5, 2  # five creations race for the last two places
    for round_number in range(ROUNDS):
        ApiToken.objects.filter(user=alice).update(revoked_at=timezone.now())
        ApiToken.objects.bulk_create(
            ApiToken(
                user=alice, name=f"old {index}", prefix=f"smp_{round_number:03}{index:03}"[:12],
                key_hash=f"{round_number:032x}{index:032x}", expires_at=timezone.now() + timedelta(days=1),
                credential_stamp=credential_stamp(alice),
            )
            for index in range(MAX_ACTIVE_TOKENS - free)
        )
        outcomes = race(*[lambda index=index: api_token_create(user=alice, name=f"racer {index}") for index in range(racers)])
        assert len(results_of(outcomes)) == free
        refusals = errors_of(outcomes)
        assert len(refusals) == racers - free
        assert all(isinstance(error, ValidationError) and "active tokens" in " ".join(error.messages) for error in refusals)
        active = ApiToken.objects.filter(user=alice, revoked_at__isnull=True, expires_at__gt=timezone.now())
        assert active.count() == MAX_ACTIVE_TOKENS

