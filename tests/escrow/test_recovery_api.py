"""The key recovery API: /api/v1/recoveries/… with the JSON error shape on every 4xx."""

from __future__ import annotations

import base64

from portal_testing import PASSWORD
from rest_framework.test import APIClient
from test_recovery_support import (  # noqa: F401 - fixtures
    AGENT_PASSPHRASE,
    DOWNLOAD_PASSPHRASE,
    agent_p12,
    agent_user,
    approved_recovery,
    spki,
)

from enrollment.pki.pkcs12 import load_pkcs12
from escrow.models import RecoveryRequest

BASE = "/api/v1/recoveries/"


def api(user) -> APIClient:
    client = APIClient()
    token = base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {token}")
    return client


def error_of(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"} and error["message"]
    if code:
        assert error["code"] == code, error
    return error


def test_the_whole_recovery_through_the_api(pki, issued, alice, bob, approver, approver2, agent_user, agent_p12):
    response = api(alice).post(BASE, {"certificate": issued.serial, "reason": "Laptop stolen"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending" and body["certificate"] == issued.serial and body["recipient"] == "alice"
    assert body["required_approvals"] == 2 and body["approvals"] == 0 and body["purpose"] == "own-key"
    rid = body["id"]

    response = api(approver).post(f"{BASE}{rid}/approve/", {"comment": "ok"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "pending" and response.json()["approvals"] == 1
    error_of(api(approver).post(f"{BASE}{rid}/approve/", {}, format="json"), 403, "separation_of_duties")
    error_of(api(alice).post(f"{BASE}{rid}/approve/", {}, format="json"), 403, "forbidden")
    error_of(api(bob).post(f"{BASE}{rid}/approve/", {}, format="json"), 404, "not_found")
    response = api(approver2).post(f"{BASE}{rid}/approve/", {"comment": "ok too"}, format="json")
    assert response.json()["status"] == "approved"
    assert [d["approver"] for d in response.json()["decisions"]] == ["approver", "approver2"]

    # Completion: multipart upload of the agent's PKCS#12.
    wrong = api(agent_user).post(
        f"{BASE}{rid}/complete/", {"agent_pkcs12": _file(agent_p12), "passphrase": "wrong"}, format="multipart"
    )
    assert "agent_pkcs12" in error_of(wrong, 400, "invalid")["fields"]
    error_of(api(agent_user).post(f"{BASE}{rid}/complete/", {"passphrase": "x"}, format="multipart"), 400, "invalid")
    error_of(
        api(approver).post(
            f"{BASE}{rid}/complete/", {"agent_pkcs12": _file(agent_p12), "passphrase": AGENT_PASSPHRASE}, format="multipart"
        ),
        403,
    )
    response = api(agent_user).post(
        f"{BASE}{rid}/complete/", {"agent_pkcs12": _file(agent_p12), "passphrase": AGENT_PASSPHRASE}, format="multipart"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "completed" and response.json()["completed_by"] == "agent"
    assert [k["certificate"] for k in response.json()["recovered_keys"]] == [issued.serial]
    error_of(
        api(agent_user).post(
            f"{BASE}{rid}/complete/", {"agent_pkcs12": _file(agent_p12), "passphrase": AGENT_PASSPHRASE}, format="multipart"
        ),
        409, "invalid_state",
    )

    # Download, for the recipient only.
    error_of(api(alice).post(f"{BASE}{rid}/pkcs12/", {"passphrase": "short"}, format="json"), 400, "invalid")
    error_of(api(alice).post(f"{BASE}{rid}/pkcs12/", {"passphrase": DOWNLOAD_PASSPHRASE, "format": "zip"}, format="json"), 400)
    for other in (bob, approver, agent_user):
        error_of(api(other).post(f"{BASE}{rid}/pkcs12/", {"passphrase": DOWNLOAD_PASSPHRASE}, format="json"), 404, "not_found")
    response = api(alice).post(f"{BASE}{rid}/pkcs12/", {"passphrase": DOWNLOAD_PASSPHRASE, "format": "compatible"}, format="json")
    assert response.status_code == 200 and response["Content-Type"] == "application/x-pkcs12"
    assert spki(load_pkcs12(response.content, DOWNLOAD_PASSPHRASE).key) == spki(issued.x509)


def _file(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("agent.p12", data, content_type="application/x-pkcs12")


def test_create_errors(pki, issued, alice, bob, auditor):
    error = error_of(api(alice).post(BASE, {"certificate": issued.serial}, format="json"), 400, "invalid")
    assert "reason" in error["fields"]
    error = error_of(api(alice).post(BASE, {"reason": "x"}, format="json"), 400, "invalid")
    assert "certificate" in error["fields"]
    error_of(api(bob).post(BASE, {"certificate": issued.serial, "reason": "x"}, format="json"), 404, "not_found")
    error_of(api(bob).post(BASE, {"employee": "alice", "reason": "x"}, format="json"), 404, "not_found")
    error_of(api(alice).post(BASE, {"certificate": issued.serial, "reason": "x", "purpose": "legal-hold"}, format="json"), 403)
    error_of(api(alice).post(BASE, {"certificate": issued.serial, "reason": "x", "purpose": "nonsense"}, format="json"), 400)
    error = error_of(
        api(alice).post(BASE, {"certificate": issued.serial, "reason": "x", "recipient": "bob"}, format="json"), 400
    )
    assert "recipient" in error["fields"]
    response = api(auditor).post(BASE, {"employee": "alice", "reason": "Case 17"}, format="json")
    assert response.status_code == 201 and response.json()["purpose"] == "legal-hold"
    assert response.json()["certificate"] is None and response.json()["recipient"] == "auditor"
    assert APIClient().post(BASE, {"employee": "alice", "reason": "x"}, format="json").status_code in (401, 403)


def test_reject_needs_a_comment(pki, issued, alice, approver):
    rid = api(alice).post(BASE, {"certificate": issued.serial, "reason": "x"}, format="json").json()["id"]
    assert "comment" in error_of(api(approver).post(f"{BASE}{rid}/reject/", {}, format="json"), 400)["fields"]
    response = api(approver).post(f"{BASE}{rid}/reject/", {"comment": "Not you"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert response.json()["decisions"] == [
        {"approver": "approver", "decision": "reject", "comment": "Not you", "at": response.json()["decisions"][0]["at"]}
    ]
    error_of(api(approver).post(f"{BASE}{rid}/pkcs12/", {"passphrase": DOWNLOAD_PASSPHRASE}, format="json"), 404)
    error_of(api(alice).post(f"{BASE}{rid}/pkcs12/", {"passphrase": DOWNLOAD_PASSPHRASE}, format="json"), 409, "invalid_state")


def test_list_and_detail_visibility(pki, issued, alice, bob, approver, auditor, agent_user, pki_admin):
    rid = api(alice).post(BASE, {"certificate": issued.serial, "reason": "x"}, format="json").json()["id"]
    for user in (alice, approver, auditor, agent_user, pki_admin):
        listing = api(user).get(BASE)
        assert listing.status_code == 200, user
        assert listing.json()["count"] == 1 and [r["id"] for r in listing.json()["results"]] == [rid]
        assert api(user).get(f"{BASE}{rid}/").json()["id"] == rid
    assert api(bob).get(BASE).json()["count"] == 0
    error_of(api(bob).get(f"{BASE}{rid}/"), 404, "not_found")
    error_of(api(alice).get(f"{BASE}999/"), 404, "not_found")
    assert api(alice).delete(f"{BASE}{rid}/").status_code == 405
    assert RecoveryRequest.objects.count() == 1


def test_list_is_paginated(pki, issued, alice, auditor, pki_admin):
    api(alice).post(BASE, {"certificate": issued.serial, "reason": "mine"}, format="json")
    api(auditor).post(BASE, {"employee": "alice", "reason": "Case 17"}, format="json")
    api(pki_admin).post(BASE, {"certificate": issued.serial, "reason": "audit copy", "recipient": "pkiadmin"}, format="json")

    first = api(pki_admin).get(BASE, {"page_size": 2})
    assert first.status_code == 200 and first.json()["count"] == 3 and len(first.json()["results"]) == 2
    second = api(pki_admin).get(first.json()["next"])
    assert len(second.json()["results"]) == 1 and second.json()["next"] is None
    ids = [r["id"] for r in first.json()["results"] + second.json()["results"]]
    assert ids == sorted(ids, reverse=True)  # newest first, stable across pages
    error_of(api(pki_admin).get(BASE, {"page": 9}), 404)


def test_an_oversized_upload_is_refused_without_touching_the_disk(approved_recovery, agent_user, agent_p12, settings):
    import tempfile
    from pathlib import Path

    before = set(Path(tempfile.gettempdir()).glob("*.upload*"))
    too_big = agent_p12 + b"\0" * (settings.FILE_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = api(agent_user).post(
        f"{BASE}{approved_recovery.pk}/complete/",
        {"agent_pkcs12": _file(too_big), "passphrase": AGENT_PASSPHRASE},
        format="multipart",
    )
    assert "agent_pkcs12" in error_of(response, 400, "invalid")["fields"]
    assert set(Path(tempfile.gettempdir()).glob("*.upload*")) == before
    approved_recovery.refresh_from_db()
    assert approved_recovery.status == "approved"
