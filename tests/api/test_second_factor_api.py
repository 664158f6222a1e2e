"""The second factor on the API: trusted roles call it with a verified session, a token created
after their second factor, or the current code in `X-OTP`; otherwise 403 "second_factor_required".

Every approval, rejection, recovery step, revocation and key release is tried three ways
without the factor (HTTP Basic without X-OTP, a token from a session that had not passed it,
such a session itself) and once with it. Employees are unaffected. The pages and the admin:
tests/portal/test_second_factor.py.
"""

from __future__ import annotations

import base64

import pytest
from api_testing import basic_client, token_client
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver
from django_otp.plugins.otp_static.models import StaticToken
from portal_testing import PASSWORD
from rest_framework.permissions import AllowAny
from second_factor_testing import (  # noqa: F401 - fixtures
    AGENT_PASSPHRASE,
    ROLES,
    agent_p12,
    app_code,
    enforced,
    enrol,
    fresh_app_code,
    real_demo_accounts,
    role_user,
    verified_client,
)

from audit.models import AuditEvent
from enrollment.models import Certificate, CertificateRequest
from enrollment.services.requests import certificate_request_create
from escrow.models import RecoveryRequest
from escrow.services.recovery import recovery_request_create
from portal.second_factor_guards import SecondFactorForTrustedRoles
from portal.services import api_token_create

# What each role reads with its role (a GET that answers 200 once the factor is there).
ROLE_READS = {
    "approver": "/api/v1/employees/",
    "auditor": "/api/v1/audit-events/",
    "pki administrator": "/api/v1/publications/",
    "agent": "/api/v1/recoveries/",
    "superuser": "/api/v1/employees/",
}


def _refused(response) -> str:
    """The message of a 403 second_factor_required (the JSON error shape)."""
    assert response.status_code == 403, (response.status_code, response.content[:300])
    error = response.json()["error"]
    assert error["code"] == "second_factor_required" and set(error) == {"code", "message", "fields"}
    return error["message"]


def _token_without_second_factor(user) -> str:
    """A token made without the second factor: before the account got its role, or while it was exempt
    (a trusted role's session cannot reach the token page or API before it passes the factor)."""
    return api_token_create(user=user, name="older script").plaintext


def _without_second_factor(user):
    """The three ways a trusted role's call lacks its second factor, as API clients."""
    from rest_framework.test import APIClient

    session = APIClient()
    session.force_login(user)
    return {"basic": basic_client(user), "token": token_client(_token_without_second_factor(user)), "session": session}


def _with_x_otp(user, device):
    """HTTP Basic with the current code of the user's authenticator app in X-OTP."""
    from rest_framework.test import APIClient

    client = APIClient()
    credentials = base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}", HTTP_X_OTP=fresh_app_code(device))
    return client


# --- Every view asks ------------------------------------------------------------------------


def _api_views(patterns=None, prefix=""):
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            yield from _api_views(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and (prefix + str(entry.pattern)).startswith("api/"):
            view_class = getattr(entry.callback, "cls", None)
            if view_class is not None:
                yield prefix + str(entry.pattern), view_class


def test_every_api_view_that_authenticates_asks_trusted_roles_for_the_second_factor():
    checked = []
    for route, view_class in _api_views():
        public = view_class.authentication_classes == [] or view_class.permission_classes == [AllowAny]
        if public:
            continue  # the CA certificates, CRLs and the schema: anyone may read them, anonymous too
        assert SecondFactorForTrustedRoles in view_class.permission_classes, route
        checked.append(route)
    assert len(checked) >= 25


# --- Every trusted role -----------------------------------------------------------------------


@pytest.mark.parametrize("role", list(ROLES))
def test_each_trusted_role_is_refused_without_the_second_factor_and_served_with_it(pki, enforced, role_user, role):
    user = role_user(role)
    url = ROLE_READS[role]
    assert "has not set up yet" in _refused(basic_client(user).get(url))

    device = enrol(user)
    for way, client in _without_second_factor(user).items():
        message = _refused(client.get(url))
        assert "X-OTP" in message, (way, message)
    assert _with_x_otp(user, device).get(url).status_code == 200
    session = verified_client(user, device)
    assert session.get(url).status_code == 200
    created = session.post("/api/v1/tokens/", {"name": "nightly"}, content_type="application/json").json()
    assert created["second_factor"] is True
    assert token_client(created["token"]).get(url).status_code == 200


def test_a_wrong_or_replayed_code_is_refused_and_audited(pki, enforced, role_user):
    user = role_user("approver")
    device = enrol(user)
    code = app_code(device)
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    assert "That code is wrong" in _refused(basic_client(user).get("/api/v1/requests/", HTTP_X_OTP=wrong))
    assert basic_client(user).get("/api/v1/requests/", HTTP_X_OTP=code).status_code == 200
    assert "used already" in _refused(basic_client(user).get("/api/v1/requests/", HTTP_X_OTP=code))
    failures = AuditEvent.objects.filter(action="auth.second_factor_failed", actor_id=user.pk)
    assert failures.count() == 2 and {event.details["via"] for event in failures} == {"api"}
    # A recovery code is for people at the verify page; a script never spends one.
    assert "six-digit code" in _refused(basic_client(user).get("/api/v1/requests/", HTTP_X_OTP="recovery1"))
    assert StaticToken.objects.filter(device__user=user, token="recovery1").exists()


def test_a_token_created_with_x_otp_carries_the_second_factor(pki, enforced, role_user):
    user = role_user("auditor")
    device = enrol(user)
    refused = basic_client(user).post("/api/v1/tokens/", {"name": "export"}, format="json")
    _refused(refused)
    created = _with_x_otp(user, device).post("/api/v1/tokens/", {"name": "export"}, format="json").json()
    assert created["second_factor"] is True
    assert token_client(created["token"]).get("/api/v1/audit-events/").status_code == 200
    event = AuditEvent.objects.filter(action="token.created").latest("id")
    assert event.details["second_factor"] is True


# --- Approvals, rejections, recovery steps, revocations, key release ----------------------------


def _refused_three_ways_then_done(user, call):
    """`call(client)` answers 403 second_factor_required three ways, then succeeds with X-OTP."""
    device = enrol(user)
    for client in _without_second_factor(user).values():
        _refused(call(client))
    return call(_with_x_otp(user, device))


def test_approving_and_rejecting_a_request_over_the_api_need_the_second_factor(pki, enforced, alice, role_user):
    approver = role_user("approver")
    first = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    done = _refused_three_ways_then_done(approver, lambda client: client.post(f"/api/v1/requests/{first.pk}/approve/"))
    assert done.status_code == 200 and CertificateRequest.objects.get(pk=first.pk).state == "issued"

    second = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    done = _refused_three_ways_then_done(
        role_user("approver", "olga"),
        lambda client: client.post(f"/api/v1/requests/{second.pk}/reject/", {"reason": "duplicate"}, format="json"),
    )
    assert done.status_code == 200 and CertificateRequest.objects.get(pk=second.pk).state == "rejected"


def test_every_recovery_step_over_the_api_needs_the_second_factor(pki, enforced, issued, alice, role_user):
    recovery = recovery_request_create(requested_by=alice, reason="Laptop stolen", serial=issued.serial)
    for name in ("olga", "oskar"):
        done = _refused_three_ways_then_done(
            role_user("approver", name),
            lambda client: client.post(f"/api/v1/recoveries/{recovery.pk}/approve/", {"comment": "ok"}, format="json"),
        )
        assert done.status_code == 200, done.content
    assert RecoveryRequest.objects.get(pk=recovery.pk).status == "approved"

    def complete(client):
        upload = SimpleUploadedFile("agent.p12", agent_p12(pki), content_type="application/x-pkcs12")
        return client.post(
            f"/api/v1/recoveries/{recovery.pk}/complete/",
            {"agent_pkcs12": upload, "passphrase": AGENT_PASSPHRASE},
            format="multipart",
        )

    done = _refused_three_ways_then_done(role_user("agent"), complete)
    assert done.status_code == 200, done.content
    assert RecoveryRequest.objects.get(pk=recovery.pk).status == "completed"

    rejected = recovery_request_create(requested_by=alice, reason="Laptop stolen", serial=issued.serial)
    done = _refused_three_ways_then_done(
        role_user("approver", "petra"),
        lambda client: client.post(f"/api/v1/recoveries/{rejected.pk}/reject/", {"comment": "no"}, format="json"),
    )
    assert done.status_code == 200 and RecoveryRequest.objects.get(pk=rejected.pk).status == "rejected"


@pytest.mark.parametrize("role", ["approver", "pki administrator", "superuser"])
def test_revocation_by_staff_over_the_api_needs_the_second_factor(pki, enforced, issued, role_user, role):
    done = _refused_three_ways_then_done(
        role_user(role),
        lambda client: client.post(f"/api/v1/certificates/{issued.serial}/revoke/", {"reason": "superseded"}, format="json"),
    )
    assert done.status_code == 200 and Certificate.objects.get(pk=issued.pk).status == "revoked"


def test_a_trusted_role_releasing_its_own_key_over_the_api_needs_the_second_factor(pki, enforced, role_user, issue):
    approver = role_user("approver")
    certificate = issue(approver, role_user("approver", "olga"))
    done = _refused_three_ways_then_done(
        approver,
        lambda client: client.post(
            f"/api/v1/certificates/{certificate.serial}/pkcs12/", {"passphrase": "a long passphrase"}, format="json"
        ),
    )
    assert done.status_code == 200 and done["Content-Type"] == "application/x-pkcs12"


# --- Employees, the exemption ------------------------------------------------------------------


def test_employees_call_the_api_without_a_second_factor(pki, enforced, issued, alice):
    assert basic_client(alice).get("/api/v1/certificates/").status_code == 200
    created = basic_client(alice).post("/api/v1/tokens/", {"name": "mine"}, format="json").json()
    assert created["second_factor"] is False
    assert token_client(created["token"]).get(f"/api/v1/certificates/{issued.serial}/").status_code == 200
    done = basic_client(alice).post(f"/api/v1/certificates/{issued.serial}/revoke/", {"reason": "superseded"}, format="json")
    assert done.status_code == 200


def test_the_demo_exemption_never_applies_outside_development(pki, settings, real_demo_accounts, approver):
    settings.PORTAL_DEMO_2FA = False
    settings.DEVELOPMENT = True
    assert basic_client(approver).get("/api/v1/employees/").status_code == 200
    settings.DEVELOPMENT = False
    assert "has not set up yet" in _refused(basic_client(approver).get("/api/v1/employees/"))


def test_the_openapi_schema_documents_the_x_otp_header(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    scheme = schema["components"]["securitySchemes"]["otpCode"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-OTP")
    assert "second_factor_required" in scheme["description"]
