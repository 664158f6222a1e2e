"""The minimal REST API: request → approve → certificate → PKCS#12, with HTTP Basic auth."""

import base64

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from portal_testing import PASSWORD
from rest_framework.test import APIClient

from enrollment.models import CertificateRequest


def client_for(user) -> APIClient:
    client = APIClient()
    token = base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {token}")
    return client


def test_full_path_through_the_api(pki, alice, approver):
    response = client_for(alice).post("/api/v1/requests/", {"key_type": "ec-p384"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "pending" and response.json()["key_type"] == "ec-p384"
    request_id = response.json()["id"]

    response = client_for(approver).post(f"/api/v1/requests/{request_id}/approve/", format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "issued"
    serial = body["certificate"]["serial"]
    assert int(serial, 16) > 0

    detail = client_for(alice).get(f"/api/v1/certificates/{serial}/")
    assert detail.status_code == 200
    assert detail.json()["mailbox"] == "alice@example.org" and detail.json()["pem"].startswith("-----BEGIN CERTIFICATE")
    assert client_for(approver).get(f"/api/v1/certificates/{serial}/").status_code == 200

    response = client_for(alice).post(
        f"/api/v1/certificates/{serial}/pkcs12/", {"passphrase": "a long passphrase", "format": "modern"}, format="json"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-pkcs12"
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Disposition"].startswith("attachment;")
    bundle = pkcs12.load_pkcs12(response.content, b"a long passphrase")
    assert format(bundle.cert.certificate.serial_number, "x") == serial


def test_approving_ones_own_request_is_403_with_a_json_error(pki, approver):
    request_id = client_for(approver).post("/api/v1/requests/", {}, format="json").json()["id"]

    response = client_for(approver).post(f"/api/v1/requests/{request_id}/approve/", format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "separation_of_duties"
    assert "separation of duties" in response.json()["error"]["message"]
    assert CertificateRequest.objects.get(pk=request_id).state == "pending"


def test_employee_cannot_approve_and_cannot_see_others_requests(pki, alice, bob):
    request_id = client_for(alice).post("/api/v1/requests/", {}, format="json").json()["id"]

    assert client_for(bob).post(f"/api/v1/requests/{request_id}/approve/").status_code == 404
    response = client_for(alice).post(f"/api/v1/requests/{request_id}/approve/")
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


def test_reject_needs_a_reason(pki, alice, approver):
    request_id = client_for(alice).post("/api/v1/requests/", {}, format="json").json()["id"]

    response = client_for(approver).post(f"/api/v1/requests/{request_id}/reject/", {"reason": ""}, format="json")
    assert response.status_code == 400 and "reason" in response.json()["error"]["fields"]
    response = client_for(approver).post(f"/api/v1/requests/{request_id}/reject/", {"reason": "duplicate"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "rejected"


@pytest.mark.parametrize(
    "payload, field",
    [({"key_type": "rsa-1024"}, "key_type"), ({"certificate_type": "bogus"}, "certificate_type")],
)
def test_invalid_input_is_400_with_field_errors(pki, alice, payload, field):
    response = client_for(alice).post("/api/v1/requests/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_malformed_json_is_a_400_not_a_500(pki, alice):
    response = client_for(alice).post("/api/v1/requests/", "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "parse_error"


def test_anonymous_is_401(pki):
    response = APIClient().post("/api/v1/requests/", {}, format="json")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"


def test_nobody_downloads_another_employees_key(pki, issued, bob, approver, auditor):
    for user in (bob, approver, auditor):
        response = client_for(user).post(
            f"/api/v1/certificates/{issued.serial}/pkcs12/", {"passphrase": "a long passphrase"}, format="json"
        )
        assert response.status_code == 404, user
        assert b"PRIVATE" not in response.content
    # Bob cannot even read the certificate's details; auditors and approvers can.
    assert client_for(bob).get(f"/api/v1/certificates/{issued.serial}/").status_code == 404
    assert client_for(auditor).get(f"/api/v1/certificates/{issued.serial}/").status_code == 200


def test_short_passphrase_and_unknown_format_are_refused(pki, issued, alice):
    url = f"/api/v1/certificates/{issued.serial}/pkcs12/"
    response = client_for(alice).post(url, {"passphrase": "short"}, format="json")
    assert response.status_code == 400 and "passphrase" in response.json()["error"]["fields"]
    response = client_for(alice).post(url, {"passphrase": "a long passphrase", "format": "rc2"}, format="json")
    assert response.status_code == 400 and "format" in response.json()["error"]["fields"]


def test_pickup_window_closed_is_410(pki, issued, alice):
    from django.utils import timezone

    issued.pickup.expires_at = timezone.now()
    issued.pickup.save()
    response = client_for(alice).post(
        f"/api/v1/certificates/{issued.serial}/pkcs12/", {"passphrase": "a long passphrase"}, format="json"
    )
    assert response.status_code == 410 and response.json()["error"]["code"] == "pickup_unavailable"
