"""The OpenAPI schema: it validates, its UI needs no CDN, and the API keeps to it (schemathesis).

Schemathesis generates requests from the schema (valid ones, and invalid ones that must
be refused with a 4xx) for every operation, as each role, against the real application
(Django's WSGI handler, in process, on the test database). Every answer must be no 5xx
and must match what the schema documents for its status code. The run is bounded: a few
examples per operation and mode, and a time limit per role.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
from api_testing import basic_client, token_client
from django.core.management import call_command
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from openapi_spec_validator import validate
from rest_framework.test import APIClient

# Per operation and role: random and invalid input, then the real objects (a few: they change state).
# Few negative ones: tests/api/test_fuzz_negative.py runs that mode on its own, with its checks.
# Generation is derandomized, so the same examples run each time (no flaky finds).
EXAMPLES_PER_OPERATION = {"positive": 3, "negative": 2, "known": 2}
SECONDS_PER_ROLE = 40


def _schema(client=None) -> dict:
    response = (client or APIClient()).get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200, response.content[:300]
    return response.json()


def test_schema_is_valid_openapi_3(db):
    schema = _schema()

    validate(schema)  # openapi-spec-validator: raises on any violation
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in (
        "/api/v1/requests/", "/api/v1/requests/{request_id}/approve/", "/api/v1/certificates/{serial}/revoke/",
        "/api/v1/certificates/{serial}/pkcs12/", "/api/v1/ca/{slug}/crl/", "/api/v1/employees/",
        "/api/v1/publications/{publication_id}/retry/", "/api/v1/tokens/", "/api/v1/tokens/{token_id}/",
    ):
        assert path in paths, path
    assert {"basicAuth", "tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_schema_documents_errors_filters_and_pagination(db):
    schema = _schema()
    error = {"$ref": "#/components/schemas/Error"}
    problems = []
    for path, operations in schema["paths"].items():
        if path.startswith(("/api/v1/schema/", "/api/v1/docs/", "/api/v1/redoc/")):
            continue
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            codes = {code for code in operation["responses"] if code.startswith("4")}
            if not codes:
                problems.append(f"{method.upper()} {path}: no error answer documented")
            for code in sorted(codes):
                content = operation["responses"][code].get("content", {})
                if content.get("application/json", {}).get("schema") != error:
                    problems.append(f"{method.upper()} {path}: {code} is not documented as the JSON error shape")
    assert not problems, "\n".join(problems)
    request_list = {p["name"] for p in schema["paths"]["/api/v1/requests/"]["get"]["parameters"]}
    assert {"state", "key_type", "certificate_type", "mailbox", "created_after", "created_before", "page", "page_size"} <= request_list
    certificate_list = {p["name"] for p in schema["paths"]["/api/v1/certificates/"]["get"]["parameters"]}
    assert {"status", "mailbox", "expiring_before", "page", "page_size"} <= certificate_list
    publication_list = {p["name"] for p in schema["paths"]["/api/v1/publications/"]["get"]["parameters"]}
    assert {"state", "page", "page_size"} <= publication_list


def test_schema_generation_has_no_warnings(db):
    """drf-spectacular warns where it has to guess: an unannotated view, an unknown type."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_swagger_ui_is_served_from_the_sidecar_not_a_cdn(db, client):
    page = client.get("/api/v1/docs/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html
    assets = re.findall(r'(?:src|href)="(/static/drf_spectacular_sidecar/[^"]+)"', html)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets), assets
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200, asset
        b"".join(served.streaming_content) if served.streaming else served.content


# --- schemathesis ---------------------------------------------------------------------------


@pytest.fixture
def populated(pki, alice, bob, approver, auditor, pki_admin, make_user, issue):
    """Something to find: alice's certificate, her pending request, bob's certificate, an API token."""
    from enrollment.roles import KEY_RECOVERY_AGENTS
    from enrollment.services.requests import certificate_request_create
    from portal.services import api_token_create

    agent = make_user("agent", groups=[KEY_RECOVERY_AGENTS])

    certificate = issue(alice, approver)
    issue(bob, approver)
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    return {
        "users": {
            "employee": alice, "other": bob, "approver": approver, "auditor": auditor, "admin": pki_admin, "agent": agent,
        },
        "serial": certificate.serial,
        "request": request.pk,
        "alice_token": api_token_create(user=alice, name="schemathesis").plaintext,
    }


def _headers(role: str, populated) -> dict:
    if role == "anonymous":
        return {}
    if role == "employee":  # alice calls with her API token, the others with HTTP Basic
        client = token_client(populated["alice_token"])
    else:
        client = basic_client(populated["users"][role])
    return {"Authorization": client._credentials["HTTP_AUTHORIZATION"]}


@pytest.mark.parametrize("role", ["anonymous", "employee", "other", "approver", "auditor", "admin", "agent"])
def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(role, populated, wsgi_app, settings):
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import response_schema_conformance

    schema = schemathesis.openapi.from_dict(_schema())
    headers = _headers(role, populated)
    known = {"serial": populated["serial"], "request_id": populated["request"], "slug": "issuing-ca"}
    checks = [not_a_server_error, response_schema_conformance]
    started = time.monotonic()
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    for operation in operations:
        # Randomly named objects (mostly not found) and valid and invalid input; then the real objects.
        strategies = [
            ("positive", operation.as_strategy(generation_mode=GenerationMode.POSITIVE)),
            ("negative", operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)),
        ]
        fixed = {name: value for name, value in known.items() if f"{{{name}}}" in operation.path}
        if fixed:
            strategies.append(
                ("known", operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=fixed))
            )
        for kind, strategy in strategies:

            @hypothesis_settings(
                max_examples=EXAMPLES_PER_OPERATION[kind] if role != "anonymous" else 2,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case):
                response = case.call_and_validate(app=wsgi_app, headers=headers, checks=checks)
                statuses[response.status_code] += 1

            run()
        assert time.monotonic() - started < SECONDS_PER_ROLE, f"over the time bound after {operation.label}"
    assert sum(statuses.values()) > len(operations) * 2
    # The run reached real objects and real refusals, not only "not found".
    # alice calls with a token, and a token creates nothing of its own kind (POST tokens/ is 403):
    # her run reaches refusals where the password roles reach a 201.
    expected = {200, 401} if role == "anonymous" else {200, 403, 400, 404} if role == "employee" else {200, 201, 400, 404}
    assert expected <= set(statuses), statuses
