"""The "only one" rules in the database, their 409s, and the retry on deadlock (core/db.py, issue 12).

SQLite and PostgreSQL alike: the races themselves are in test_races_postgres.py; here the
constraint is hit the way a lost race would hit it (a twin row committed behind the
service's check), and the migrations meet the duplicates the races left behind.
"""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.db import OperationalError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from core.db import retry_on_conflict, unique_conflicts
from core.exceptions import AlreadyExists, TryAgain


def basic_client(user):
    from portal_testing import PASSWORD
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode())
    return client

# --- Retries -------------------------------------------------------------------------------------


class _Deadlock(Exception):
    sqlstate = "40P01"


def _aborted_by_a_deadlock() -> OperationalError:
    error = OperationalError("deadlock detected")
    error.__cause__ = _Deadlock()
    return error


def test_a_deadlocked_service_is_rerun_and_then_told_to_try_again(monkeypatch):
    monkeypatch.setattr("core.db.time.sleep", lambda seconds: None)
    calls = []

    @retry_on_conflict(attempts=3)
    def flaky(*, fail_times):
        calls.append(1)
        if len(calls) <= fail_times:
            raise _aborted_by_a_deadlock()
        return "done"

    assert flaky(fail_times=2) == "done" and len(calls) == 3
    calls.clear()
    with pytest.raises(TryAgain) as refused:
        flaky(fail_times=5)
    assert len(calls) == 3
    assert (refused.value.code, refused.value.http_status) == ("try_again", 503)
    assert "Try again" in refused.value.message


def test_only_the_outermost_transaction_is_rerun_and_other_errors_pass(db):
    calls = []

    @retry_on_conflict
    def service():
        calls.append(1)
        raise _aborted_by_a_deadlock()

    with transaction.atomic(), pytest.raises(OperationalError):
        service()  # inside another transaction: one run; the outer service redoes the whole of it
    assert len(calls) == 1

    @retry_on_conflict
    def broken():
        calls.append(1)
        raise OperationalError("connection refused")

    calls.clear()
    with pytest.raises(OperationalError, match="refused"):
        broken()
    assert len(calls) == 1


def test_try_again_is_a_503_in_the_api_error_shape(pki, alice, monkeypatch):
    def busy(**kwargs):
        raise TryAgain("The portal is busy with a conflicting change to the same records. Try again in a moment.")

    monkeypatch.setattr("enrollment.api.views_requests.certificate_request_create", busy)
    response = basic_client(alice).post("/api/v1/requests/", {"key_type": "ec-p256"}, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "try_again"
    assert response["Retry-After"] == "1"


# --- The constraints, hit the way a lost race hits them ------------------------------------------


def test_a_twin_pending_request_committed_behind_the_check_is_a_409(pki, alice, monkeypatch):
    from enrollment.models import CertificateRequest

    clean = CertificateRequest.full_clean

    def twin_arrives_meanwhile(self, *args, **kwargs):
        clean(self, *args, **kwargs)
        CertificateRequest.objects.bulk_create(
            [CertificateRequest(employee=self.employee, submitted_by=self.submitted_by, key_type=self.key_type,
                                certificate_type=self.certificate_type)]
        )

    monkeypatch.setattr(CertificateRequest, "full_clean", twin_arrives_meanwhile)
    response = basic_client(alice).post("/api/v1/requests/", {"key_type": "ec-p256"}, format="json")
    assert response.status_code == 409, response.content
    assert response.json()["error"] == {
        "code": "already_exists",
        "message": "There is a pending request for this employee and certificate type already.",
        "fields": {},
    }


def test_one_live_renewal_per_certificate(pki, issued, alice):
    from enrollment.models import CertificateRequest

    def renewal(state):
        with unique_conflicts(CertificateRequest):
            return CertificateRequest.objects.create(
                employee=alice.employee, submitted_by=alice, key_type="ec-p256", renewal_of=issued, state=state
            )

    renewal("rejected")
    renewal("failed")  # refused and failed renewals do not count
    renewal("issued")
    with pytest.raises(AlreadyExists, match="renewed already") as refused:
        renewal("approved")
    assert refused.value.http_status == 409
    assert CertificateRequest.objects.filter(renewal_of=issued).count() == 3  # the savepoint kept the rest


def test_one_open_recovery_per_keys_and_recipient(pki, issued, alice, bob):
    from escrow.models import RecoveryRequest

    def recovery(*, certificate, recipient, status="pending"):
        with unique_conflicts(RecoveryRequest):
            return RecoveryRequest.objects.create(
                certificate=certificate, employee=alice.employee, purpose="admin", reason="test", requested_by=bob,
                recipient=recipient, required_approvals=2, status=status,
            )

    recovery(certificate=issued, recipient=alice, status="completed")
    recovery(certificate=issued, recipient=alice)
    recovery(certificate=issued, recipient=bob)  # another recipient: another request
    with pytest.raises(AlreadyExists, match="this key and this recipient is open already"):
        recovery(certificate=issued, recipient=alice, status="approved")
    recovery(certificate=None, recipient=alice)  # all of alice's keys
    with pytest.raises(AlreadyExists, match="these keys and this recipient is open already"):
        recovery(certificate=None, recipient=alice)


def test_an_expired_approval_does_not_block_a_new_recovery(pki, issued, alice, make_user):
    from enrollment.roles import PKI_ADMINISTRATORS
    from escrow.models import RecoveryRequest
    from escrow.services.recovery import recovery_request_create

    admin = make_user("pkiadmin", groups=[PKI_ADMINISTRATORS])
    stale = RecoveryRequest.objects.create(
        certificate=issued, employee=alice.employee, purpose="admin", reason="old", requested_by=admin,
        recipient=alice, required_approvals=2, status="approved", approval_expires_at=timezone.now() - timedelta(days=1),
    )
    new = recovery_request_create(requested_by=admin, reason="lost laptop", serial=issued.serial)
    stale.refresh_from_db()
    assert stale.status == "expired" and new.status == "pending"


# --- The migrations meet duplicates ----------------------------------------------------------------

BEFORE = [("enrollment", "0008_role_grant_requests"), ("escrow", "0005_recovery_withdrawal_and_expiry")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)._create_project_state(with_applied_migrations=True).apps


def _latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_the_migrations_resolve_or_refuse_what_the_races_left_behind():
    apps = _migrate(BEFORE)
    user_model = apps.get_model("auth", "User")
    employee_model = apps.get_model("enrollment", "Employee")
    request_model = apps.get_model("enrollment", "CertificateRequest")
    certificate_model = apps.get_model("enrollment", "Certificate")
    ca_model = apps.get_model("enrollment", "CertificateAuthority")
    recovery_model = apps.get_model("escrow", "RecoveryRequest")
    user = user_model.objects.create(username="dora")
    employee = employee_model.objects.create(user=user, mail="dora@example.org", given_name="Dora", surname="Dup")
    ca = ca_model.objects.create(slug="ca", common_name="CA", certificate_der=b"-", base_url="https://ca.example")

    def request(**fields):
        return request_model.objects.create(employee=employee, submitted_by=user, key_type="ec-p256", **fields)

    now = timezone.now()
    renewed = certificate_model.objects.create(
        request=request(state="issued"), employee=employee, issuer=ca, serial="01", subject="CN=Dora",
        mailbox=employee.mail, key_type="ec-p256", certificate_type="sponsor-strict", not_before=now,
        not_after=now + timedelta(days=365), fingerprint_sha256="01" * 32, der=b"-",
    )
    first, second, third = request(state="issued", renewal_of=renewed), request(state="issued", renewal_of=renewed), (
        request(state="pending", renewal_of=renewed)
    )
    pending, twin = request(state="pending", certificate_type="mailbox-strict"), request(
        state="pending", certificate_type="mailbox-strict"
    )
    open_recoveries = [
        recovery_model.objects.create(
            certificate=renewed, employee=employee, purpose="admin", reason="r", requested_by=user, recipient=user,
            required_approvals=2,
        )
        for _ in range(2)
    ]

    with pytest.raises(RuntimeError, match=rf"#{open_recoveries[0].pk} and #{open_recoveries[1].pk}.*Withdraw"):
        _migrate(_latest())
    recovery_model.objects.filter(pk=open_recoveries[1].pk).update(status="withdrawn")
    _migrate(_latest())

    from enrollment.models import CertificateRequest

    states = {r.pk: r for r in CertificateRequest.objects.filter(employee_id=employee.pk)}
    assert states[first.pk].renewal_of_id == renewed.pk and states[first.pk].state == "issued"
    assert states[second.pk].renewal_of_id is None and states[second.pk].state == "issued"
    assert f"request #{first.pk} is its renewal" in states[second.pk].reason
    assert states[third.pk].state == "rejected"
    assert states[pending.pk].state == "pending" and states[twin.pk].state == "rejected"
    assert f"request #{pending.pk} stays pending" in states[twin.pk].reason
