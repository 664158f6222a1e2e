"""Who may call which endpoint: every endpoint × every role, with the status each gets.

The objects in the paths belong to alice, "the employee": {serial} is her issued
certificate, {request} her pending certificate request, {token} her API token,
{employee} her employee record, {publication} the directory publication of her
certificate, {recovery} her pending request to recover her key, {approved} one with both
approvals, {completed} one an agent has completed. "other" is bob, an employee who owns
none of them; "agent" is a key recovery agent. Each cell runs on a fresh database.

404 where existence must not leak (someone else's certificate, request, token or
recovered key); 403 where the caller may know the thing exists but may not act (their
own request, a list their role does not cover). The CA endpoints are public, like /pki/.
"""

from __future__ import annotations

import pytest
from api_testing import basic_client
from django.core.files.uploadedfile import SimpleUploadedFile

ROLES = ("anonymous", "employee", "other", "approver", "auditor", "admin", "agent")

# fmt: off
MATRIX = [
    # method  path                                       anonymous employee other approver auditor admin agent
    ("GET",    "/api/v1/requests/",                           401,   200,    200,   200,    200,   200,  200),
    ("POST",   "/api/v1/requests/",                           401,   201,    201,   201,    201,   201,  201),
    ("POST",   "/api/v1/requests/ on behalf of alice",        401,   201,    403,   201,    403,   201,  403),
    ("GET",    "/api/v1/requests/{request}/",                 401,   200,    404,   200,    200,   200,  404),
    ("POST",   "/api/v1/requests/{request}/approve/",         401,   403,    404,   200,    403,   200,  404),
    ("POST",   "/api/v1/requests/{request}/reject/",          401,   403,    404,   200,    403,   200,  404),
    ("GET",    "/api/v1/certificates/",                       401,   200,    200,   200,    200,   200,  200),
    ("GET",    "/api/v1/certificates/{serial}/",              401,   200,    404,   200,    200,   200,  404),
    ("GET",    "/api/v1/certificates/{serial}/pem/",          401,   200,    404,   200,    200,   200,  404),
    ("GET",    "/api/v1/certificates/{serial}/der/",          401,   200,    404,   200,    200,   200,  404),
    ("POST",   "/api/v1/certificates/{serial}/pkcs12/",       401,   200,    404,   404,    404,   404,  404),
    ("POST",   "/api/v1/certificates/{serial}/revoke/",       401,   200,    404,   200,    404,   200,  404),
    ("POST",   "/api/v1/certificates/{serial}/renew/",        401,   409,    404,   404,    404,   404,  404),
    ("GET",    "/api/v1/ca/",                                 200,   200,    200,   200,    200,   200,  200),
    ("GET",    "/api/v1/ca/issuing-ca/",                      200,   200,    200,   200,    200,   200,  200),
    ("GET",    "/api/v1/ca/issuing-ca/chain/",                200,   200,    200,   200,    200,   200,  200),
    ("GET",    "/api/v1/ca/issuing-ca/crl/",                  200,   200,    200,   200,    200,   200,  200),
    ("GET",    "/api/v1/employees/",                          401,   403,    403,   200,    200,   200,  403),
    ("POST",   "/api/v1/employees/",                          401,   403,    403,   403,    403,   201,  403),
    ("GET",    "/api/v1/employees/{employee}/",               401,   403,    403,   200,    200,   200,  403),
    ("PATCH",  "/api/v1/employees/{employee}/",               401,   403,    403,   403,    403,   200,  403),
    ("POST",   "/api/v1/employees/{employee}/offboard/",      401,   403,    403,   200,    403,   200,  403),
    # alice holds no trusted role: she is offboarded directly, not through a request (400).
    ("POST",   "/api/v1/employees/{employee}/offboarding-request/", 401, 403,  403,   400,    403,   400,  403),
    ("GET",    "/api/v1/publications/",                       401,   403,    403,   403,    200,   200,  403),
    ("GET",    "/api/v1/publications/{publication}/",         401,   403,    403,   403,    200,   200,  403),
    ("POST",   "/api/v1/publications/{publication}/retry/",   401,   403,    403,   403,    403,   200,  403),
    ("GET",    "/api/v1/recoveries/",                         401,   200,    200,   200,    200,   200,  200),
    ("POST",   "/api/v1/recoveries/",                         401,   201,    404,   404,    201,   201,  404),
    ("GET",    "/api/v1/recoveries/{recovery}/",              401,   200,    404,   200,    200,   200,  200),
    ("POST",   "/api/v1/recoveries/{recovery}/approve/",      401,   403,    404,   200,    403,   403,  403),
    ("POST",   "/api/v1/recoveries/{recovery}/reject/",       401,   403,    404,   200,    403,   403,  403),
    ("POST",   "/api/v1/recoveries/{approved}/complete/",     401,   403,    404,   403,    403,   403,  200),
    ("POST",   "/api/v1/recoveries/{completed}/pkcs12/",      401,   200,    404,   404,    404,   404,  404),
    ("GET",    "/api/v1/audit-events/",                       401,   403,    403,   403,    200,   403,  403),
    ("GET",    "/api/v1/audit-events.csv",                    401,   403,    403,   403,    200,   403,  403),
    ("GET",    "/api/v1/tokens/",                             401,   200,    200,   200,    200,   200,  200),
    ("POST",   "/api/v1/tokens/",                             401,   201,    201,   201,    201,   201,  201),
    ("DELETE", "/api/v1/tokens/{token}/",                     401,   204,    404,   404,    404,   404,  404),
    ("GET",    "/api/v1/schema/",                             200,   200,    200,   200,    200,   200,  200),
    ("GET",    "/api/v1/docs/",                               200,   200,    200,   200,    200,   200,  200),
]
# fmt: on

AGENT_PASSPHRASE = "the agent's own passphrase"

# What each call sends (keyed by method and the row's path as written above).
BODIES = {
    ("POST", "/api/v1/requests/"): {"key_type": "ec-p256", "certificate_type": "mailbox-strict"},
    ("POST", "/api/v1/requests/ on behalf of alice"): {"mail": "alice@example.org", "key_type": "ec-p256"},
    ("POST", "/api/v1/requests/{request}/reject/"): {"reason": "duplicate"},
    ("POST", "/api/v1/certificates/{serial}/pkcs12/"): {"passphrase": "a long passphrase"},
    ("POST", "/api/v1/certificates/{serial}/revoke/"): {"reason": "superseded"},
    ("POST", "/api/v1/employees/"): {"username": "carol", "mail": "carol@example.org", "given_name": "Carol", "surname": "Cole"},
    ("PATCH", "/api/v1/employees/{employee}/"): {"department": "Sales"},
    ("POST", "/api/v1/recoveries/"): {"certificate": "{serial}", "reason": "Laptop stolen"},
    ("POST", "/api/v1/recoveries/{recovery}/approve/"): {"comment": "ok"},
    ("POST", "/api/v1/recoveries/{recovery}/reject/"): {"comment": "not like this"},
    ("POST", "/api/v1/recoveries/{completed}/pkcs12/"): {"passphrase": "a long passphrase"},
    ("POST", "/api/v1/tokens/"): {"name": "nightly export"},
}

CELLS = [
    pytest.param(method, path, role, expected, id=f"{method} {path} as {role}")
    for method, path, *statuses in MATRIX
    for role, expected in zip(ROLES, statuses, strict=True)
]


@pytest.fixture
def world(pki, alice, make_user, settings):
    """The users of the roles, created on demand (each costs a password hash)."""
    from enrollment.roles import APPROVERS, AUDITORS, KEY_RECOVERY_AGENTS, PKI_ADMINISTRATORS

    # A directory that does not answer: a retry is attempted and its failure recorded.
    settings.PORTAL_LDAP_URI = "ldap://127.0.0.1:9"
    settings.PORTAL_LDAP_USER_BASE_DN = "ou=people,dc=example,dc=org"
    settings.PORTAL_LDAP_TIMEOUT = 1
    makers = {
        "anonymous": lambda: None,
        "employee": lambda: alice,
        "other": lambda: make_user("bob"),
        "approver": lambda: make_user("approver", groups=[APPROVERS]),
        "auditor": lambda: make_user("auditor", groups=[AUDITORS]),
        "admin": lambda: make_user("pkiadmin", groups=[PKI_ADMINISTRATORS]),
        "agent": lambda: make_user("agent", groups=[KEY_RECOVERY_AGENTS]),
    }
    return {"alice": alice, "make": makers, "make_user": make_user, "material": pki["material"]}


def _agent_p12(world) -> bytes:
    from enrollment.pki.pkcs12 import pkcs12_bundle

    material = world["material"]
    return pkcs12_bundle(
        key=material.kra_key, certificate=material.kra, chain=[], friendly_name="Test Key Recovery Agent",
        passphrase=AGENT_PASSPHRASE,
    )


def _objects(path: str, world, issue) -> dict:
    """Alice's objects the path (or its body) names, created for this cell only."""
    from enrollment.models import DirectoryPublication
    from enrollment.roles import APPROVERS, KEY_RECOVERY_AGENTS
    from enrollment.services.requests import certificate_request_create
    from escrow.services.recovery import recovery_request_approve, recovery_request_complete, recovery_request_create
    from portal.services import api_token_create

    alice, make_user = world["alice"], world["make_user"]
    values = {}
    needs = lambda *names: any(f"{{{name}}}" in path for name in names)  # noqa: E731
    if needs("serial", "publication", "recovery", "approved", "completed") or path == "/api/v1/recoveries/":
        certificate = issue(alice, make_user("issuer", groups=[APPROVERS]))
        values["serial"] = certificate.serial
        publication, _ = DirectoryPublication.objects.get_or_create(certificate=certificate)
        values["publication"] = publication.pk
    if needs("recovery", "approved", "completed"):
        pending = recovery_request_create(requested_by=alice, reason="Laptop stolen", serial=values["serial"])
        values["recovery"] = values["approved"] = values["completed"] = pending.pk
        if needs("approved", "completed"):
            for name in ("first-approver", "second-approver"):
                recovery_request_approve(request_id=pending.pk, approver=make_user(name, groups=[APPROVERS]))
        if needs("completed"):
            recovery_request_complete(
                request_id=pending.pk,
                agent=make_user("keeper", groups=[KEY_RECOVERY_AGENTS]),
                agent_pkcs12=_agent_p12(world),
                passphrase=AGENT_PASSPHRASE,
            )
    if needs("request"):
        request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
        values["request"] = request.pk
    if needs("token"):
        values["token"] = api_token_create(user=alice, name="alice's script").token.pk
    if needs("employee"):
        values["employee"] = alice.employee.pk
    return values


@pytest.mark.parametrize("method, path, role, expected", CELLS)
def test_permission_matrix(method, path, role, expected, world, issue):
    values = _objects(path, world, issue)
    url = path.split(" ")[0].format(**values)
    user = world["make"][role]()
    client = basic_client(user)
    body = {key: value.format(**values) for key, value in BODIES.get((method, path), {}).items()} or None
    if path.endswith("/complete/"):
        upload = SimpleUploadedFile("agent.p12", _agent_p12(world), content_type="application/x-pkcs12")
        response = client.post(url, {"agent_pkcs12": upload, "passphrase": AGENT_PASSPHRASE}, format="multipart")
    else:
        response = getattr(client, method.lower())(url, body, format="json")

    assert response.status_code == expected, (role, method, url, response.content[:400])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"code", "message", "fields"} and error["message"]
