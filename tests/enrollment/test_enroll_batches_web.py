"""Enrollment batches in the admin and the API: read by whoever sees every request, started by PKI
administrators only, from an uploaded CSV; bad files are readable errors; the policy as configured.
"""

from __future__ import annotations

import base64

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from portal_testing import PASSWORD
from rest_framework.test import APIClient

from enrollment.models import CertificateRequest, Employee, EnrollmentBatch

CHANGELIST = "/admin/enrollment/enrollmentbatch/"
START = "/admin/enrollment/enrollmentbatch/start/"
API = "/api/v1/batches/"
GOOD = b"mail,given_name,surname,department\njane@example.org,Jane,Doe,Finance\nmin@example.org,Min,Lee,\n"
WITH_BAD_ROW = GOOD + b"out@evil.example,Oscar,Out,\n"


@pytest.fixture(autouse=True)
def policy(settings):
    settings.PORTAL_MAIL_DOMAINS = ["example.org"]
    settings.PORTAL_ENROLLMENT_AUTO_APPROVE = False
    return settings


def basic_client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        credentials = base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()
        client.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}")
    return client


def logged_in(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def upload(content: bytes, name: str = "people.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


# --- The admin ---------------------------------------------------------------------------------


def test_a_pki_administrator_starts_a_batch_from_an_uploaded_csv(client, pki_admin):
    logged_in(client, pki_admin)
    page = client.get(START)
    assert page.status_code == 200 and "the requests wait for an approver other than you" in page.content.decode()

    response = client.post(
        START, {"file": upload(WITH_BAD_ROW), "key_type": "ec-p256", "certificate_type": "sponsor-strict"}
    )

    batch = EnrollmentBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{CHANGELIST}{batch.pk}/change/"
    assert (batch.via, batch.source, batch.created, batch.failed, batch.key_type) == (
        "admin",
        "people.csv",
        2,
        1,
        "ec-p256",
    )
    assert set(CertificateRequest.objects.filter(batch=batch).values_list("state", "key_type")) == {
        ("pending", "ec-p256")
    }
    detail = client.get(response["Location"])
    text = detail.content.decode()
    assert detail.status_code == 200 and "This CA does not certify addresses at evil.example." in text
    assert "2 pending" in text
    listing = client.get(CHANGELIST).content.decode()
    assert "Start a batch from a CSV file" in listing and "2 created, 0 skipped, 1 failed" in listing


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not a CSV file"),
        (b"mail,given_name\nx@example.org,X\n", "lacks surname"),
        ("mail,given_name,surname\nj@example.org,J\u00fcrgen,M\n".encode("latin-1"), "is not UTF-8 text"),
    ],
    ids=["binary", "missing-column", "latin-1"],
)
def test_a_bad_file_is_a_readable_form_error_and_writes_nothing(client, pki_admin, content, expected):
    logged_in(client, pki_admin)

    response = client.post(
        START, {"file": upload(content), "key_type": "rsa-3072", "certificate_type": "sponsor-strict"}
    )

    assert response.status_code == 200
    assert expected in " ".join(response.context["form"].errors["file"])
    assert not EnrollmentBatch.objects.exists() and not CertificateRequest.objects.exists()


def test_the_start_page_shows_the_policy_and_refuses_a_large_in_process_batch(client, pki_admin, policy, monkeypatch):
    from enrollment import bulk_batches

    policy.PORTAL_ENROLLMENT_AUTO_APPROVE = True
    monkeypatch.setattr(bulk_batches, "issuance_in_background", lambda: False)
    logged_in(client, pki_admin)
    assert "approved by policy at once" in client.get(START).content.decode()

    rows = b"".join(b"p%d@example.org,Given,Name%d\n" % (n, n) for n in range(101))
    response = client.post(
        START,
        {
            "file": upload(b"mail,given_name,surname\n" + rows),
            "key_type": "ec-p256",
            "certificate_type": "sponsor-strict",
        },
    )

    assert response.status_code == 200
    assert "without a task queue" in " ".join(response.context["form"].non_field_errors())
    assert not EnrollmentBatch.objects.exists() and Employee.objects.count() == 1


def test_with_workers_the_upload_returns_and_queues_the_issuance(client, pki, pki_admin, policy, monkeypatch):
    from enrollment import tasks

    queued = []
    monkeypatch.setattr(tasks, "_enqueue", lambda task, **kwargs: queued.append(kwargs["request_id"]))
    policy.PORTAL_ENROLLMENT_AUTO_APPROVE = True
    policy.CELERY_BROKER_URL = "redis://127.0.0.1:6379/7"
    logged_in(client, pki_admin)

    # The test client's request runs in the test's transaction: run its on-commit work as a commit would.
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(
            START, {"file": upload(GOOD), "key_type": "ec-p256", "certificate_type": "sponsor-strict"}
        )

    assert response.status_code == 302
    batch = EnrollmentBatch.objects.get()
    assert batch.approved_by_policy
    ids = sorted(CertificateRequest.objects.filter(batch=batch, state="approved").values_list("pk", flat=True))
    assert len(ids) == 2 and sorted(queued) == ids


def test_without_workers_a_small_batch_approved_by_policy_is_issued_in_the_request(client, pki, pki_admin, policy):
    from django.test import TestCase

    policy.PORTAL_ENROLLMENT_AUTO_APPROVE = True
    logged_in(client, pki_admin)

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(
            START, {"file": upload(GOOD), "key_type": "ec-p256", "certificate_type": "sponsor-strict"}
        )

    assert response.status_code == 302
    batch = EnrollmentBatch.objects.with_progress().get()
    assert batch.progress()["issued"] == 2 and batch.approved_by_policy
    page = client.get(response["Location"]).content.decode()
    assert "2 issued" in page


def test_who_sees_and_who_starts_batches_in_the_admin(client, pki_admin, auditor, approver, alice):
    from enrollment.bulk import bulk_file_read
    from enrollment.bulk_batches import enrollment_batch_run

    enrollment_batch_run(actor=pki_admin, rows=bulk_file_read(GOOD), source="people.csv")
    for user, sees, starts in ((auditor, True, False), (approver, True, False), (pki_admin, True, True)):
        client.logout()
        logged_in(client, user) if user.is_staff else None
        listing = client.get(CHANGELIST)
        assert (listing.status_code == 200) is sees, user
        assert ("Start a batch from a CSV file" in listing.content.decode()) is starts, user
        assert (client.get(START).status_code == 200) is starts, user
        post = client.post(START, {"file": upload(GOOD), "key_type": "rsa-3072", "certificate_type": "sponsor-strict"})
        assert (post.status_code == 302) is starts, user
    # Read-only for everyone: no add, change or delete of the record itself.
    batch = EnrollmentBatch.objects.first()
    assert client.post(f"{CHANGELIST}{batch.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"{CHANGELIST}add/").status_code == 403
    client.logout()
    logged_in(client, alice)
    assert client.get(CHANGELIST).status_code == 302  # an employee is not staff: to the log-in page


# --- The API ---------------------------------------------------------------------------------


def test_the_api_starts_a_batch_and_shows_its_progress(pki_admin, auditor):
    response = basic_client(pki_admin).post(
        API, {"file": upload(WITH_BAD_ROW), "key_type": "ec-p256"}, format="multipart"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["via"], body["created"], body["skipped"], body["failed"], body["started_by"]) == (
        "api",
        2,
        0,
        1,
        "pkiadmin",
    )
    assert body["progress"] == {"pending": 2, "approved": 0, "rejected": 0, "issued": 0, "failed": 0}
    assert body["failures"] == [
        {
            "where": "4",
            "username": "",
            "mail": "out@evil.example",
            "field": "mail",
            "reason": "This CA does not certify addresses at evil.example.",
        }
    ]
    listing = basic_client(auditor).get(API)
    assert listing.status_code == 200 and [item["id"] for item in listing.json()["results"]] == [body["id"]]
    assert "failures" not in listing.json()["results"][0]
    detail = basic_client(auditor).get(f"{API}{body['id']}/")
    assert detail.status_code == 200 and detail.json()["progress"]["pending"] == 2


def test_a_bad_file_through_the_api_is_a_400_in_the_error_shape(pki_admin):
    response = basic_client(pki_admin).post(API, {"file": upload(b"\x00\x01binary")}, format="multipart")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and "is not a CSV file" in error["fields"]["file"][0]
    assert not EnrollmentBatch.objects.exists()

    missing = basic_client(pki_admin).post(API, {"key_type": "ec-p256"}, format="multipart")
    assert missing.status_code == 400 and "file" in missing.json()["error"]["fields"]
    unknown_key = basic_client(pki_admin).post(API, {"file": upload(GOOD), "key_type": "dsa"}, format="multipart")
    assert unknown_key.status_code == 400 and "key type" in unknown_key.json()["error"]["fields"]["key_type"][0]


@pytest.mark.parametrize(
    ("who", "read", "start"),
    [
        ("anonymous", 401, 401),
        ("alice", 403, 403),
        ("approver", 200, 403),
        ("auditor", 200, 403),
        ("pki_admin", 200, 201),
    ],
)
def test_the_api_permissions_per_role(request, pki_admin, who, read, start):
    user = None if who == "anonymous" else request.getfixturevalue(who)
    client = basic_client(user)

    assert client.get(API).status_code == read
    response = client.post(API, {"file": upload(GOOD)}, format="multipart")
    assert response.status_code == start, response.content
    if start != 201:
        assert "error" in response.json() and not EnrollmentBatch.objects.exists()


def test_an_unknown_batch_is_a_404(auditor):
    response = basic_client(auditor).get(f"{API}999999/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
