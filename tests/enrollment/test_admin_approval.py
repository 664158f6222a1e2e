"""Approvers work in the Django admin: changelist, filters, bulk approve and reject."""

import pytest
from portal_testing import PASSWORD

from enrollment.services.requests import certificate_request_create

CHANGELIST = "/admin/enrollment/certificaterequest/"


@pytest.fixture
def approver_client(client, approver):
    assert client.login(username="approver", password=PASSWORD)
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_changelist_filters_and_search(pki, approver_client, alice, bob):
    certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    certificate_request_create(employee=bob.employee, submitted_by=bob)

    assert approver_client.get(CHANGELIST).status_code == 200
    response = approver_client.get(CHANGELIST, {"state": "pending", "key_type": "ec-p256"})
    assert [r.employee.mail for r in response.context["cl"].result_list] == ["alice@example.org"]
    response = approver_client.get(CHANGELIST, {"q": "Baker"})
    assert [r.employee.mail for r in response.context["cl"].result_list] == ["bob@example.org"]


def test_bulk_approve_reports_per_request(pki, approver_client, approver, alice, bob):
    ok = certificate_request_create(employee=alice.employee, submitted_by=alice)
    own = certificate_request_create(employee=approver.employee, submitted_by=approver)

    response = approver_client.post(
        CHANGELIST, {"action": "approve_selected", "_selected_action": [ok.pk, own.pk]}, follow=True
    )

    messages = _messages(response)
    ok.refresh_from_db()
    own.refresh_from_db()
    assert ok.state == "issued" and own.state == "pending"
    # One summary line for the batch, naming each refusal with its reason.
    assert messages == [
        f"1 request approved; certificates issued; 1 could not be approved: #{own.pk} "
        "(it is your own request (separation of duties))."
    ]


def test_bulk_reject_asks_for_a_reason_first(pki, approver_client, alice):
    request = certificate_request_create(employee=alice.employee, submitted_by=alice)
    data = {"action": "reject_selected", "_selected_action": [request.pk]}

    response = approver_client.post(CHANGELIST, data)
    assert response.status_code == 200 and b"reason" in response.content
    request.refresh_from_db()
    assert request.state == "pending"

    response = approver_client.post(CHANGELIST, {**data, "confirm": "yes", "reason": "Contractor, not eligible"}, follow=True)
    request.refresh_from_db()
    assert request.state == "rejected" and request.reason == "Contractor, not eligible"
    assert any(f"Request #{request.pk} rejected." in m for m in _messages(response))


def test_approvers_group_has_the_approve_permission(pki, approver, auditor):
    assert approver.has_perm("enrollment.approve_certificaterequest")
    assert not auditor.has_perm("enrollment.approve_certificaterequest")


def test_auditor_sees_requests_but_has_no_approve_action(pki, client, auditor, alice):
    certificate_request_create(employee=alice.employee, submitted_by=alice)
    client.login(username="auditor", password=PASSWORD)
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert "approve_selected" not in response.content.decode()


def test_issued_certificates_are_read_only_in_the_admin(pki, issued, approver_client):
    url = f"/admin/enrollment/certificate/{issued.pk}/change/"
    response = approver_client.get(url)
    assert response.status_code == 200 and issued.serial in response.content.decode()
    assert approver_client.post(url, {"status": "revoked"}).status_code == 403
    assert approver_client.post(f"/admin/enrollment/certificate/{issued.pk}/delete/").status_code == 403
    issued.refresh_from_db()
    assert issued.status == "valid"


def test_employees_have_no_admin(pki, client, alice):
    client.login(username="alice", password=PASSWORD)
    response = client.get(CHANGELIST)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
