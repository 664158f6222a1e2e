"""The owner's download (escrow.services.pickups.pickup_copy_export, POST /api/v1/certificates/<serial>/pkcs12/).

Issue 13: the certificate was read twice (the API view's 404 check and the service), and the
PKCS#12 was built inside the transaction that counts the download, which on SQLite holds the
database's one write lock. Now: one read, the build before a short transaction that checks
the copy again.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from audit.events import AuditAction
from audit.models import AuditEvent
from core.exceptions import PickupUnavailable
from escrow.models import PickupCopy
from escrow.services import pickups
from portal.services import api_token_create

PASSPHRASE = "a long download passphrase"


def api_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=user, name='t').plaintext}")
    return client


def downloads_audited(certificate) -> list[dict]:
    events = AuditEvent.objects.filter(action=AuditAction.CERTIFICATE_PKCS12_DOWNLOADED, object_id=str(certificate.pk))
    return [event.details for event in events.order_by("pk")]


def test_a_download_over_the_api_reads_the_certificate_once(issued, alice):
    client = api_client(alice)
    url = f"/api/v1/certificates/{issued.serial}/pkcs12/"
    body = {"passphrase": PASSPHRASE, "format": "modern"}
    assert client.post(url, body, format="json", secure=True).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = client.post(url, body, format="json", secure=True)
    assert response.status_code == 200 and response["Content-Type"] == "application/x-pkcs12"
    sql = [query["sql"] for query in queries.captured_queries]
    certificate_reads = [s for s in sql if s.startswith('SELECT "enrollment_certificate"."id"')]
    assert len(certificate_reads) == 1, sql
    assert not any(s.startswith('SELECT 1 AS "a" FROM "escrow_escrowrecord"') for s in sql), sql  # with the copy
    assert [details["download"] for details in downloads_audited(issued)] == [1, 2]


def test_someone_elses_certificate_is_a_404_whatever_the_body(issued, bob):
    client = api_client(bob)
    url = f"/api/v1/certificates/{issued.serial}/pkcs12/"
    for body in ({"passphrase": "short"}, {"passphrase": PASSPHRASE, "format": "bogus"}, {}):
        assert client.post(url, body, format="json", secure=True).status_code == 404, body
    assert client.post(url, {"passphrase": PASSPHRASE}, format="json", secure=True).status_code == 404
    assert client.post(url, b"{not json", content_type="application/json", secure=True).status_code == 404


def test_the_owner_with_a_bad_body_is_told_what_is_wrong(issued, alice):
    response = api_client(alice).post(
        f"/api/v1/certificates/{issued.serial}/pkcs12/", {"passphrase": "short"}, format="json", secure=True
    )
    assert response.status_code == 400 and "passphrase" in response.json()["error"]["fields"]


@pytest.mark.django_db(transaction=True)
def test_the_pkcs12_is_built_outside_any_transaction(pki, alice, approver, monkeypatch):
    from enrollment.services.issuance import certificate_pkcs12_export
    from enrollment.services.requests import certificate_request_approve, certificate_request_create

    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    certificate = certificate_request_approve(request_id=request.pk, approver=approver).certificate
    build = pickups.certificate_download
    in_transaction = []

    def watched(**kwargs):
        in_transaction.append(connection.in_atomic_block)
        return build(**kwargs)

    monkeypatch.setattr(pickups, "certificate_download", watched)
    certificate_pkcs12_export(user=alice, serial=certificate.serial, passphrase=PASSPHRASE, fmt="modern")
    assert in_transaction == [False]
    assert PickupCopy.objects.get(certificate=certificate).download_count == 1


def test_a_copy_destroyed_during_the_build_is_not_handed_out(issued, alice, monkeypatch):
    build = pickups.certificate_download

    def revoked_meanwhile(**kwargs):
        download = build(**kwargs)
        pickups.pickup_copy_destroy(certificate=issued)  # e.g. a revocation committing during the build
        return download

    monkeypatch.setattr(pickups, "certificate_download", revoked_meanwhile)
    with pytest.raises(PickupUnavailable):
        pickups.pickup_copy_export(actor=alice, serial=issued.serial, passphrase=PASSPHRASE, fmt="modern")
    assert downloads_audited(issued) == []


def test_token_authentication_reads_token_user_and_groups_at_once_and_still_sees_role_changes(issued, alice):
    from django.contrib.auth.models import Group
    from rest_framework.exceptions import AuthenticationFailed

    from enrollment.roles import AUDITORS
    from portal.authentication import api_token_authenticate

    Group.objects.get_or_create(name="Some other group")[0].user_set.add(alice)
    token = api_token_create(user=alice, name="t").plaintext
    api_token_authenticate(token=token)  # marks it used (one write a minute)
    with CaptureQueriesContext(connection) as queries:
        assert api_token_authenticate(token=token).user == alice  # two groups: two rows, one token
    assert len(queries) == 1, [query["sql"] for query in queries.captured_queries]

    # A new role behind the services' back (no m2m signal): the stamp still tells, from the joined groups.
    type(alice).groups.through.objects.create(user=alice, group=Group.objects.get_or_create(name=AUDITORS)[0])
    with pytest.raises(AuthenticationFailed, match="roles changed"):
        api_token_authenticate(token=token)
