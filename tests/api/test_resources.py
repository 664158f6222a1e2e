"""The API's resources: filters, pagination and ordering, input checks with readable messages, downloads."""

from __future__ import annotations

from datetime import timedelta

import pytest
from api_testing import basic_client
from cryptography import x509
from django.utils import timezone

from audit.models import AuditEvent
from enrollment.models import Certificate, CertificateRequest, DirectoryPublication, Employee
from enrollment.services.requests import (
    certificate_request_approve,
    certificate_request_create,
    certificate_request_reject,
)


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# --- Requests -------------------------------------------------------------------------------


@pytest.fixture
def requests_of_three(pki, alice, bob, make_user, approver):
    """alice: issued (ec-p256); bob: rejected (ec-p384, mailbox-strict); carol: pending (rsa-4096)."""
    carol = make_user("carol", given_name="Carol", surname="Cole")
    issued = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    certificate_request_approve(request_id=issued.pk, approver=approver)
    rejected = certificate_request_create(
        employee=bob.employee, submitted_by=bob, key_type="ec-p384", certificate_type="mailbox-strict"
    )
    certificate_request_reject(request_id=rejected.pk, approver=approver, reason="duplicate")
    pending = certificate_request_create(employee=carol.employee, submitted_by=carol, key_type="rsa-4096")
    return {"issued": issued.pk, "rejected": rejected.pk, "pending": pending.pk}


@pytest.mark.parametrize(
    "query, expected",
    [
        ({}, ["pending", "rejected", "issued"]),
        ({"state": "pending"}, ["pending"]),
        ({"state": "issued"}, ["issued"]),
        ({"key_type": "ec-p384"}, ["rejected"]),
        ({"certificate_type": "mailbox-strict"}, ["rejected"]),
        ({"mailbox": "ALICE@example.org"}, ["issued"]),
        ({"state": "rejected", "key_type": "ec-p256"}, []),
    ],
)
def test_request_filters(requests_of_three, approver, query, expected):
    response = basic_client(approver).get("/api/v1/requests/", query)

    assert _ids(response) == [requests_of_three[name] for name in expected]


def test_request_date_filters(requests_of_three, approver):
    CertificateRequest.objects.filter(pk=requests_of_three["issued"]).update(
        created_at=timezone.now() - timedelta(days=10)
    )
    cut = (timezone.now() - timedelta(days=1)).isoformat()
    client = basic_client(approver)

    assert _ids(client.get("/api/v1/requests/", {"created_before": cut})) == [requests_of_three["issued"]]
    assert requests_of_three["issued"] not in _ids(client.get("/api/v1/requests/", {"created_after": cut}))
    response = client.get("/api/v1/requests/", {"created_after": "2026-02-30"})
    assert response.status_code == 400 and "created_after" in response.json()["error"]["fields"]
    response = client.get("/api/v1/requests/", {"created_after": cut, "created_before": cut})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["created_before"] == ["Must be later than created_after."]


def test_employees_see_their_own_requests_only(requests_of_three, alice, bob):
    assert _ids(basic_client(alice).get("/api/v1/requests/")) == [requests_of_three["issued"]]
    assert _ids(basic_client(bob).get("/api/v1/requests/", {"state": "issued"})) == []
    assert basic_client(bob).get(f"/api/v1/requests/{requests_of_three['issued']}/").status_code == 404


@pytest.mark.parametrize(
    "query, field, message",
    [
        ({"state": "done"}, "state", '"done" is not a request state; choose one of pending, approved'),
        ({"key_type": "dsa"}, "key_type", '"dsa" is not a key type; choose one of rsa-3072, rsa-4096, ec-p256, ec-p384.'),
        ({"mailbox": "not-an-address"}, "mailbox", "valid email address"),
    ],
)
def test_bad_filters_are_400_with_a_readable_message(requests_of_three, approver, query, field, message):
    response = basic_client(approver).get("/api/v1/requests/", query)

    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "invalid" and message in " ".join(body["fields"][field])


def test_pagination_is_stable_and_bounded(pki, make_user, approver):
    users = [make_user(f"user{index}") for index in range(7)]
    for user in users:
        certificate_request_create(employee=user.employee, submitted_by=user, key_type="ec-p256")
    # Same creation time for all: the id breaks the tie, so pages neither repeat nor skip.
    CertificateRequest.objects.update(created_at=timezone.now())
    client = basic_client(approver)

    first = client.get("/api/v1/requests/", {"page_size": 3}).json()
    second = client.get("/api/v1/requests/", {"page_size": 3, "page": 2}).json()
    third = client.get("/api/v1/requests/", {"page_size": 3, "page": 3}).json()

    assert first["count"] == 7 and first["previous"] is None and "page=2" in first["next"]
    ids = [row["id"] for page in (first, second, third) for row in page["results"]]
    assert ids == sorted(CertificateRequest.objects.values_list("id", flat=True), reverse=True)
    assert third["next"] is None
    response = client.get("/api/v1/requests/", {"page": 9})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert len(client.get("/api/v1/requests/", {"page_size": 100000}).json()["results"]) == 7
    assert client.get("/api/v1/requests/", {"page": "x"}).status_code == 404


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"key_type": "rsa-1024"}, "key_type", '"rsa-1024" is not a key type this CA issues; choose one of rsa-3072'),
        ({"certificate_type": "legacy"}, "certificate_type", '"legacy" is not a certificate type; choose one of'),
        ({"mail": "bob@"}, "mail", "Enter a mailbox such as jane.doe@example.org."),
        ({"employee": 0}, "employee", "greater than or equal to 1"),
        ({"employee": 1, "mail": "bob@example.org"}, "mail", "by id or by mail, not both"),
    ],
)
def test_request_input_is_checked(pki, approver, body, field, message):
    response = basic_client(approver).post("/api/v1/requests/", body, format="json")

    assert response.status_code == 400
    assert message in " ".join(response.json()["error"]["fields"][field])
    assert not CertificateRequest.objects.exists()


def test_approvers_request_on_behalf_of_employees(pki, alice, bob, approver):
    by_id = basic_client(approver).post("/api/v1/requests/", {"employee": alice.employee.pk}, format="json")
    by_mail = basic_client(approver).post("/api/v1/requests/", {"mail": "BOB@example.org"}, format="json")

    assert by_id.status_code == 201 and by_id.json()["employee"] == "alice"
    assert by_id.json()["submitted_by"] == "approver"
    assert by_mail.status_code == 201 and by_mail.json()["mailbox"] == "bob@example.org"
    # The approver submitted them: separation of duties keeps them from approving them.
    response = basic_client(approver).post(f"/api/v1/requests/{by_id.json()['id']}/approve/")
    assert response.status_code == 403 and response.json()["error"]["code"] == "separation_of_duties"
    unknown = basic_client(approver).post("/api/v1/requests/", {"mail": "nobody@example.org"}, format="json")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["fields"]["mail"] == ["No employee has the mailbox nobody@example.org."]


def test_employees_cannot_request_for_others(pki, alice, bob):
    response = basic_client(bob).post("/api/v1/requests/", {"mail": "alice@example.org"}, format="json")

    assert response.status_code == 403
    assert "only request certificates for yourself" in response.json()["error"]["message"]
    # Naming oneself is fine.
    assert basic_client(bob).post("/api/v1/requests/", {"employee": bob.employee.pk}, format="json").status_code == 201


def test_a_second_pending_request_is_refused_with_a_reason(pki, alice):
    assert basic_client(alice).post("/api/v1/requests/", {}, format="json").status_code == 201
    response = basic_client(alice).post("/api/v1/requests/", {}, format="json")
    assert response.status_code == 400 and "pending request" in response.json()["error"]["message"]


def test_mail_domains_outside_the_ca_are_refused(pki, alice, settings):
    settings.PORTAL_MAIL_DOMAINS = ["corp.example"]

    response = basic_client(alice).post("/api/v1/requests/", {}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["mail"] == ["This CA does not certify addresses at example.org."]


# --- Certificates ---------------------------------------------------------------------------


@pytest.fixture
def two_certificates(pki, alice, bob, approver, issue):
    alices = issue(alice, approver)
    bobs = issue(bob, approver, key_type="ec-p384")
    return alices, bobs


def test_certificate_filters(two_certificates, approver):
    alices, bobs = two_certificates
    Certificate.objects.filter(pk=bobs.pk).update(not_after=timezone.now() + timedelta(days=5))
    Certificate.objects.filter(pk=alices.pk).update(status="revoked")
    client = basic_client(approver)

    def serials(query):
        response = client.get("/api/v1/certificates/", query)
        assert response.status_code == 200, response.content
        return [row["serial"] for row in response.json()["results"]]

    assert serials({}) == [bobs.serial, alices.serial]
    assert serials({"status": "valid"}) == [bobs.serial]
    assert serials({"mailbox": "alice@example.org"}) == [alices.serial]
    assert serials({"expiring_before": (timezone.now() + timedelta(days=30)).isoformat()}) == [bobs.serial]
    assert serials({"key_type": "ec-p384"}) == [bobs.serial]
    response = client.get("/api/v1/certificates/", {"status": "lost"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["status"] == [
        '"lost" is not a certificate status; choose one of valid, revoked, expired.'
    ]


def test_employees_list_their_own_certificates(two_certificates, alice):
    alices, _ = two_certificates
    rows = basic_client(alice).get("/api/v1/certificates/").json()["results"]
    assert [row["serial"] for row in rows] == [alices.serial]


def test_certificate_downloads(two_certificates, alice):
    alices, _ = two_certificates
    client = basic_client(alice)

    pem = client.get(f"/api/v1/certificates/{alices.serial}/pem/")
    der = client.get(f"/api/v1/certificates/{alices.serial}/der/", HTTP_ACCEPT="application/pkix-cert")

    assert pem.status_code == 200 and pem["Content-Type"] == "application/x-pem-file"
    assert x509.load_pem_x509_certificate(pem.content).serial_number == int(alices.serial, 16)
    assert der.status_code == 200 and der["Content-Type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(der.content).serial_number == int(alices.serial, 16)
    # Serials are hex, colons allowed, any case; anything else is simply not found.
    colons = ":".join(alices.serial.upper()[i : i + 2] for i in range(0, len(alices.serial), 2))
    assert client.get(f"/api/v1/certificates/{colons}/").status_code == 200
    response = client.get("/api/v1/certificates/not-hex/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_revocation_through_the_api(two_certificates, alice, approver):
    alices, bobs = two_certificates

    refused = basic_client(alice).post(
        f"/api/v1/certificates/{alices.serial}/revoke/", {"reason": "cessation_of_operation"}, format="json"
    )
    assert refused.status_code == 403 and "key_compromise or superseded" in refused.json()["error"]["message"]
    unknown = basic_client(alice).post(f"/api/v1/certificates/{alices.serial}/revoke/", {"reason": "lost it"}, format="json")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["fields"]["reason"][0].startswith('"lost it" is not a revocation reason; choose one of')
    assert "remove_from_crl" not in unknown.json()["error"]["fields"]["reason"][0]

    response = basic_client(alice).post(
        f"/api/v1/certificates/{alices.serial}/revoke/", {"reason": "key_compromise", "comment": "laptop stolen"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "revoked" and response.json()["revocation_reason"] == "key_compromise"
    again = basic_client(approver).post(f"/api/v1/certificates/{alices.serial}/revoke/", {"reason": "superseded"}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"

    by_approver = basic_client(approver).post(
        f"/api/v1/certificates/{bobs.serial}/revoke/", {"reason": "affiliation_changed"}, format="json"
    )
    assert by_approver.status_code == 200 and by_approver.json()["revocation_reason"] == "affiliation_changed"
    assert AuditEvent.objects.filter(action="certificate.revoked").count() == 2


def test_pkcs12_of_a_revoked_certificate_is_refused(two_certificates, alice, approver):
    alices, _ = two_certificates
    basic_client(approver).post(f"/api/v1/certificates/{alices.serial}/revoke/", {"reason": "superseded"}, format="json")

    response = basic_client(alice).post(
        f"/api/v1/certificates/{alices.serial}/pkcs12/", {"passphrase": "a long passphrase"}, format="json"
    )
    assert 400 <= response.status_code < 500 and b"PRIVATE" not in response.content


def test_renewal_within_the_window(two_certificates, alice, settings):
    alices, _ = two_certificates
    settings.PORTAL_RENEWAL_AUTO_APPROVE = False
    Certificate.objects.filter(pk=alices.pk).update(not_after=timezone.now() + timedelta(days=3))

    response = basic_client(alice).post(f"/api/v1/certificates/{alices.serial}/renew/")

    assert response.status_code == 201, response.content
    assert response.json()["state"] == "pending" and response.json()["key_type"] == alices.key_type
    again = basic_client(alice).post(f"/api/v1/certificates/{alices.serial}/renew/")
    assert again.status_code in (400, 409) and again.json()["error"]["message"]


# --- CAs ------------------------------------------------------------------------------------


def test_ca_endpoints_are_public(pki, alice, approver, issue):
    from cryptography.hazmat.primitives.serialization import Encoding

    certificate = issue(alice, approver)
    basic_client(approver).post(f"/api/v1/certificates/{certificate.serial}/revoke/", {"reason": "superseded"}, format="json")
    anonymous = basic_client(None)

    listed = anonymous.get("/api/v1/ca/").json()["results"]
    assert [row["slug"] for row in listed] == ["root-ca", "issuing-ca"]
    assert listed[1]["parent"] == "root-ca" and listed[1]["is_issuing"] is True
    assert listed[0]["pem"] == pki["material"].root.public_bytes(Encoding.PEM).decode()

    chain = anonymous.get("/api/v1/ca/issuing-ca/chain/")
    assert chain["Content-Type"] == "application/pem-certificate-chain"
    assert [c.subject for c in x509.load_pem_x509_certificates(chain.content)] == [
        pki["material"].issuing.subject, pki["material"].root.subject
    ]

    der = anonymous.get("/api/v1/ca/issuing-ca/crl/")
    pem = anonymous.get("/api/v1/ca/issuing-ca/crl/", {"encoding": "pem"})
    assert der["Content-Type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(der.content)
    assert crl.get_revoked_certificate_by_serial_number(int(certificate.serial, 16)) is not None
    assert x509.load_pem_x509_crl(pem.content).public_bytes(Encoding.DER) == der.content
    bad = anonymous.get("/api/v1/ca/issuing-ca/crl/", {"encoding": "xml"})
    assert bad.status_code == 400 and bad.json()["error"]["fields"]["encoding"]
    assert anonymous.get("/api/v1/ca/nope/chain/").status_code == 404


# --- Employees ------------------------------------------------------------------------------


def test_pki_administrators_create_and_change_employees(pki, pki_admin, settings):
    settings.PORTAL_MAIL_DOMAINS = ["example.org"]
    client = basic_client(pki_admin)

    created = client.post(
        "/api/v1/employees/",
        {"username": "dora", "mail": "Dora.Diaz@Example.org", "given_name": "Dora", "surname": "Diaz"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["mail"] == "dora.diaz@example.org" and created.json()["username"] == "dora"
    employee = Employee.objects.get(mail="dora.diaz@example.org")
    assert not employee.user.has_usable_password()
    assert AuditEvent.objects.filter(action="employee.created", actor_name="pkiadmin").exists()

    changed = client.patch(f"/api/v1/employees/{employee.pk}/", {"department": "Sales"}, format="json")
    assert changed.status_code == 200 and changed.json()["department"] == "Sales"
    assert changed.json()["given_name"] == "Dora"
    listed = client.get("/api/v1/employees/", {"mail": "DORA.DIAZ@example.org"}).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == employee.pk


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"username": "eve", "mail": "eve@elsewhere.test"}, "mail", "This CA does not certify addresses at elsewhere.test"),
        ({"username": "eve", "mail": "eve at example.org"}, "mail", "Enter a mailbox such as jane.doe@example.org."),
        ({"username": "eve"}, "mail", "This field is required."),
        ({"username": "eve smith", "mail": "eve@example.org"}, "username", "Enter a valid username."),
        ({"username": "alice", "mail": "alice2@example.org"}, "username", "has an employee record already"),
        ({"username": "eve", "mail": "alice@example.org"}, "mail", "already exists"),
        ({"username": "eve", "mail": "eve@example.org", "given_name": "x" * 65}, "given_name", "no more than 64"),
    ],
)
def test_employee_input_is_checked(pki, pki_admin, alice, settings, body, field, message):
    settings.PORTAL_MAIL_DOMAINS = ["example.org"]

    response = basic_client(pki_admin).post("/api/v1/employees/", body, format="json")

    assert response.status_code == 400, response.content
    assert message in " ".join(response.json()["error"]["fields"][field])


def test_offboarding_revokes_and_deactivates(pki, alice, approver, issue):
    certificate = issue(alice, approver, key_type="ec-p384")
    client = basic_client(approver)

    response = client.post(f"/api/v1/employees/{alice.employee.pk}/offboard/")

    assert response.status_code == 200, response.content
    assert response.json()["revoked"] == [certificate.serial] and response.json()["employee"]["active"] is False
    certificate.refresh_from_db()
    assert certificate.status == "revoked" and certificate.revocation_reason == "cessation_of_operation"
    # Nobody offboards themselves; and the leaver's password no longer opens the API.
    response = client.post(f"/api/v1/employees/{approver.employee.pk}/offboard/")
    assert response.status_code == 403 and response.json()["error"]["code"] == "separation_of_duties"
    assert basic_client(alice).get("/api/v1/certificates/").status_code == 401


# --- Directory publications -----------------------------------------------------------------


def test_publications_list_filter_and_retry(pki, alice, bob, approver, pki_admin, auditor, issue, settings):
    alices = DirectoryPublication.objects.create(certificate=issue(alice, approver), state="failed")
    bobs = DirectoryPublication.objects.create(certificate=issue(bob, approver), state="published")
    settings.PORTAL_LDAP_URI = "ldap://127.0.0.1:9"  # nothing listens: the attempt fails, and says so
    settings.PORTAL_LDAP_USER_BASE_DN = "ou=people,dc=example,dc=org"
    settings.PORTAL_LDAP_TIMEOUT = 1

    listed = basic_client(auditor).get("/api/v1/publications/").json()
    assert [row["id"] for row in listed["results"]] == [bobs.pk, alices.pk]
    failed = basic_client(auditor).get("/api/v1/publications/", {"state": "failed"}).json()["results"]
    assert [row["serial"] for row in failed] == [alices.certificate.serial]

    response = basic_client(pki_admin).post(f"/api/v1/publications/{alices.pk}/retry/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["operation"] == "publish" and body["ok"] is False and body["error"]
    assert body["publication"]["attempts"] == 1 and body["publication"]["state"] == "failed"
    assert AuditEvent.objects.filter(action="directory.publish_failed", actor_name="pkiadmin").exists()
    assert basic_client(auditor).post(f"/api/v1/publications/{alices.pk}/retry/").status_code == 403


def test_retry_without_a_directory_says_so(pki, alice, approver, pki_admin, issue, settings):
    settings.PORTAL_LDAP_URI = ""
    publication = DirectoryPublication.objects.create(certificate=issue(alice, approver), state="failed")

    response = basic_client(pki_admin).post(f"/api/v1/publications/{publication.pk}/retry/")

    assert response.status_code == 503
    assert response.json()["error"]["message"] == "No directory is configured (PORTAL_LDAP_URI is empty)."


def test_unknown_api_urls_get_the_json_error_shape(rf):
    from django.http import Http404

    from core.api.errors import page_not_found

    response = page_not_found(rf.get("/api/v1/nothing-here/"), Http404())
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert b'"code": "not_found"' in response.content or b'"code":"not_found"' in response.content
    page = page_not_found(rf.get("/not-api/"), Http404())
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
