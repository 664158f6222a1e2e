"""Schemathesis in its negative mode over every operation: invalid input is never a 5xx, and JSON.

Schemathesis generates requests that break the schema on purpose (wrong types, out-of-range
numbers, missing or extra fields, bad path parameters), as an employee (with an API token),
an approver (HTTP Basic) and anonymously, against the real application (Django's WSGI
handler, in process, on the test database), once with randomly named objects and once with
the real ones. Every answer must be no 5xx, and every error answer under /api/ the one JSON
error shape. Bounded: a few examples per operation and role, and a time limit for the run.
(tests/api/test_openapi_schema.py runs the positive mode and the schema conformance check.)
"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
from api_testing import basic_client, token_client
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

EXAMPLES = {"employee": 3, "approver": 4, "anonymous": 2}
SECONDS = 60


@pytest.fixture
def objects(pki, alice, approver, issue):
    """Real objects for the second pass: alice's certificate and her pending request, her token."""
    from enrollment.services.requests import certificate_request_create
    from portal.services import api_token_create

    certificate = issue(alice, approver)
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    return {
        "known": {"serial": certificate.serial, "request_id": request.pk, "slug": "issuing-ca"},
        "headers": {
            "anonymous": {},
            "employee": {"Authorization": f"Bearer {api_token_create(user=alice, name='fuzz').plaintext}"},
            "approver": {"Authorization": basic_client(approver)._credentials["HTTP_AUTHORIZATION"]},
        },
    }


def _json_error_shape(response, label: str) -> None:
    if response.status_code < 400:
        return
    headers = {name.lower(): value for name, value in response.headers.items()}  # schemathesis: name → [values]
    content_type = headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/json"), f"{label}: {response.status_code} {content_type}"
    body = json.loads(response.content)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}, f"{label}: {body}"


@pytest.mark.parametrize("role", ["employee", "approver", "anonymous"])
def test_schemathesis_negative_mode_finds_no_server_error(role, objects, wsgi_app):
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode

    token = objects["headers"]["employee"]["Authorization"].split()[1]
    schema = schemathesis.openapi.from_dict(token_client(token).get("/api/v1/schema/", {"format": "json"}).json())
    headers = objects["headers"][role]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    statuses: Counter[int] = Counter()
    started = time.monotonic()
    for operation in operations:
        strategies = [operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)]
        fixed = {name: value for name, value in objects["known"].items() if f"{{{name}}}" in operation.path}
        if fixed and operation.method.upper() != "GET":  # the real object, with an invalid body or query
            strategies.append(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE, path_parameters=fixed))
        for strategy in strategies:

            @hypothesis_settings(
                max_examples=EXAMPLES[role],
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case):
                response = case.call_and_validate(app=wsgi_app, headers=headers, checks=[not_a_server_error])
                _json_error_shape(response, f"{role} {case.method} {case.formatted_path}")
                statuses[response.status_code] += 1

            run()
        assert time.monotonic() - started < SECONDS, f"over {SECONDS} s after {operation.label}"
    assert sum(statuses.values()) >= len(operations)
    # Invalid input reaches the validation (400) and the refusals, not only "not found".
    expected = {401} if role == "anonymous" else {400, 404}
    assert expected <= set(statuses), statuses


def test_the_unmatched_addresses_schemathesis_cannot_reach_are_json_too(db):
    """Addresses outside the schema (it only knows its own paths)."""
    client = APIClient()
    for url in ("/api/v1/recoveries/abc/", "/api/v1/certificates/x/nope/", "/api/v1//", "/api/v1/ca/%ff/"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
