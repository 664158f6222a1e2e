"""The second factor of every trusted role in the admin and on the staff paths of the pages.

For each trusted role (approver, auditor, PKI administrator, key recovery agent, superuser) the
admin refuses a session that has not passed the second factor (to the verify page) and opens
after it; so does every approval and rejection of a certificate request, every recovery step
(approve, reject, withdraw, complete) and every revocation by staff there, and the self-service
pages where a trusted role acts on someone else's certificate or recovery.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from second_factor_testing import (  # noqa: F401 - fixtures
    AGENT_PASSPHRASE,
    ROLES,
    VERIFY,
    agent_p12,
    enforced,
    enrol,
    fresh_app_code,
    role_user,
    to_second_factor,
    unverified_client,
    verified_client,
)

from enrollment.models import Certificate, CertificateRequest
from enrollment.roles import APPROVERS, KEY_RECOVERY_AGENTS
from enrollment.services.requests import certificate_request_create
from escrow.models import RecoveryRequest
from escrow.services.recovery import recovery_request_approve, recovery_request_create


@pytest.mark.parametrize("role", list(ROLES))
def test_the_admin_refuses_each_trusted_role_until_the_second_factor(pki, enforced, role_user, role):
    user = role_user(role)
    device = enrol(user)

    client = unverified_client(user)
    for url in ("/admin/", "/admin/enrollment/certificate/", "/admin/login/?next=/admin/"):
        assert to_second_factor(client.get(url), page=VERIFY), url
    assert to_second_factor(client.post("/admin/enrollment/certificate/", {"action": "revoke_selected"}), page=VERIFY)
    # The pages of the portal too: a trusted role acts only with its second factor.
    assert to_second_factor(client.get("/"), page=VERIFY)
    assert to_second_factor(client.get("/recovery/"), page=VERIFY)

    client.post(VERIFY, {"code": fresh_app_code(device)})
    assert client.get("/admin/").status_code == 200
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("role", list(ROLES))
def test_the_admin_site_itself_refuses_without_the_second_factor(pki, enforced, role_user, role, rf):
    """Should a request reach the admin past the middleware, the site's own permission check refuses."""
    from django.contrib import admin
    from django.contrib.sessions.backends.db import SessionStore

    user = role_user(role)
    request = rf.get("/admin/")
    request.session = SessionStore()
    request.user = user
    user.is_verified = lambda: False
    assert not admin.site.has_permission(request)
    user.is_verified = lambda: True
    assert admin.site.has_permission(request)


@pytest.fixture
def alices_request(pki, alice):
    return certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")


@pytest.fixture
def alices_recovery(issued, alice):
    return recovery_request_create(requested_by=alice, reason="Laptop stolen", serial=issued.serial)


def test_admin_approval_and_rejection_of_a_request_need_the_second_factor(enforced, alices_request, make_user, alice):
    approver = make_user("olga", groups=[APPROVERS])
    device = enrol(approver)
    url = "/admin/enrollment/certificaterequest/"
    approve = {"action": "approve_selected", "_selected_action": [alices_request.pk]}
    assert to_second_factor(unverified_client(approver).post(url, approve))
    assert CertificateRequest.objects.get(pk=alices_request.pk).state == "pending"
    verified_client(approver, device).post(url, approve)
    assert CertificateRequest.objects.get(pk=alices_request.pk).state == "issued"

    other = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    reject = {"action": "reject_selected", "_selected_action": [other.pk], "confirm": "yes", "reason": "duplicate"}
    assert to_second_factor(unverified_client(approver).post(url, reject))
    assert CertificateRequest.objects.get(pk=other.pk).state == "pending"
    verified_client(approver, device).post(url, reject)
    assert CertificateRequest.objects.get(pk=other.pk).state == "rejected"


def test_admin_recovery_decisions_and_completion_need_the_second_factor(enforced, pki, alices_recovery, make_user):
    url = "/admin/escrow/recoveryrequest/"
    first, second = make_user("olga", groups=[APPROVERS]), make_user("oskar", groups=[APPROVERS])
    for approver in (first, second):
        data = {"action": "approve_selected", "_selected_action": [alices_recovery.pk], "confirm": "yes", "comment": "ok"}
        refused = unverified_client(approver).post(url, data)
        assert to_second_factor(refused) and not alices_recovery.decisions.filter(approver=approver).exists()
        verified_client(approver).post(url, data)
        assert alices_recovery.decisions.filter(approver=approver).exists()
    assert RecoveryRequest.objects.get(pk=alices_recovery.pk).status == "approved"

    agent = make_user("kim", groups=[KEY_RECOVERY_AGENTS])
    complete = f"{url}{alices_recovery.pk}/complete/"

    def upload():
        return {"agent_pkcs12": SimpleUploadedFile("agent.p12", agent_p12(pki)), "passphrase": AGENT_PASSPHRASE}

    assert to_second_factor(unverified_client(agent).get(complete))
    assert to_second_factor(unverified_client(agent).post(complete, upload()))
    assert RecoveryRequest.objects.get(pk=alices_recovery.pk).status == "approved"
    verified_client(agent).post(complete, upload())
    assert RecoveryRequest.objects.get(pk=alices_recovery.pk).status == "completed"


def test_admin_recovery_rejection_and_withdrawal_need_the_second_factor(enforced, issued, alice, make_user):
    url = "/admin/escrow/recoveryrequest/"
    approver = make_user("olga", groups=[APPROVERS])
    device = enrol(approver)
    for action, status in (("reject_selected", "rejected"), ("withdraw_selected", "withdrawn")):
        recovery = recovery_request_create(requested_by=alice, reason="Laptop stolen", serial=issued.serial)
        if action == "withdraw_selected":
            recovery_request_approve(request_id=recovery.pk, approver=make_user("oskar", groups=[APPROVERS]))
        data = {"action": action, "_selected_action": [recovery.pk], "confirm": "yes", "comment": "no", "reason": "no"}
        assert to_second_factor(unverified_client(approver).post(url, data))
        assert RecoveryRequest.objects.get(pk=recovery.pk).status == "pending"
        verified_client(approver, device).post(url, data)
        assert RecoveryRequest.objects.get(pk=recovery.pk).status == status, action


@pytest.mark.parametrize("role", ["approver", "pki administrator", "superuser"])
def test_admin_revocation_needs_the_second_factor(enforced, issued, role_user, role):
    user = role_user(role)
    url = "/admin/enrollment/certificate/"
    data = {"action": "revoke_selected", "_selected_action": [issued.pk], "confirm": "yes", "reason": "privilege_withdrawn"}
    device = enrol(user)
    assert to_second_factor(unverified_client(user).post(url, data))
    assert Certificate.objects.get(pk=issued.pk).status == "valid"
    verified_client(user, device).post(url, data)
    assert Certificate.objects.get(pk=issued.pk).status == "revoked"


def test_a_trusted_role_revoking_on_the_self_service_page_needs_the_second_factor(enforced, issued, make_user):
    """The self-service revocation lets a holder of enrollment.revoke_certificate revoke anyone's: staff work."""
    approver = make_user("olga", groups=[APPROVERS])
    url = f"/certificates/{issued.serial}/revoke/"
    data = {"reason": "key_compromise", "confirm": "on"}
    device = enrol(approver)
    assert to_second_factor(unverified_client(approver).post(url, data))
    assert Certificate.objects.get(pk=issued.pk).status == "valid"
    verified_client(approver, device).post(url, data)
    assert Certificate.objects.get(pk=issued.pk).status == "revoked"


def test_a_trusted_role_withdrawing_a_recovery_on_the_self_service_page_needs_the_second_factor(
    enforced, issued, alice, make_user
):
    """The self-service withdrawal lets an approver withdraw anyone's recovery: staff work too."""
    approver = make_user("olga", groups=[APPROVERS])
    recovery = recovery_request_create(requested_by=alice, reason="Laptop stolen", serial=issued.serial)
    url = f"/recovery/{recovery.pk}/withdraw/"
    device = enrol(approver)
    assert to_second_factor(unverified_client(approver).post(url, {"reason": "duplicate"}), page=VERIFY)
    assert RecoveryRequest.objects.get(pk=recovery.pk).status == "pending"
    verified_client(approver, device).post(url, {"reason": "duplicate"})
    assert RecoveryRequest.objects.get(pk=recovery.pk).status == "withdrawn"
