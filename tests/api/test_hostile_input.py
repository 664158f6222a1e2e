"""Hostile input, over every endpoint of the API: never a 5xx, every error in the one JSON shape.

A corpus of what fuzzers and attackers send (deep JSON, huge numbers, lone surrogates, NUL
bytes, overlong strings, control and bidi characters, wrong content types, SQL and LDAP
meta characters), in path parameters, query parameters and bodies, as an approver, an
employee (API token) and anonymously. Also the parser's own refusals, DEBUG's HTML pages
under /api/, and error messages that quote the caller's input (escaped, bounded).
"""

from __future__ import annotations

import json
import logging
import re
import time
from urllib.parse import urlencode

import pytest
from api_testing import basic_client, token_client
from django.test import override_settings

from core.api.parsers import MAX_BODY_BYTES, MAX_DEPTH

SECONDS = 60

# In a path segment (percent-encoded where the URL needs it).
PATH_VALUES = [
    "abc", "0", "-1", "9" * 40, "1e999", "%00", "%ff%fe", "%ed%a0%80", "%e2%80%ae%e2%80%8b", "%c2%85", "%0d%0a",
    "%27%3B%20DROP%20TABLE%20x%3B--", "%2A%29%28uid%3D%2A", "..%2F..%2Fetc%2Fpasswd", "a" * 3000, "%F0%9F%94%91",
]
# In a query parameter (Django's test client encodes them).
QUERY_VALUES = [
    "\x00", "-1", "0", "9" * 40, "1e999", "NaN", "9999999-01-01", "'; DROP TABLE x;--", "*)(uid=*)", "\u202e\u200b",
    "\r\n\t\x07\x1b", "\x85\u2028", "a" * 5000, "%", "\ud800", "[]", "{}",
]
# As the value of each body field, and as the body itself.
BODY_VALUES = [
    None, True, -1, 0, 2**63, -(2**63) - 1, 10**39, 1.5, 1e308, "", "\ud800", "\udfff\ud800", "\x00", "a\x00b",
    "x" * 100_000, "\u202eevil\u200b", "\r\n\x07\x1b\x7f\x85", "'; DROP TABLE x;--", "*)(uid=*))(|(uid=*",
    "\\", "${jndi:ldap://x}", "<script>", [], {}, ["\ud800"], {"\ud800": 1}, [[[]]],
]
RAW_BODIES = [
    ("application/json", "[" * 2000 + "]" * 2000),
    ("application/json", '{"a":' * 1000 + "1" + "}" * 1000),
    ("application/json", "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)),
    ("application/json", "1" * 5000),
    ("application/json", "-" + "9" * 4400),
    ("application/json", "1e99999"),
    ("application/json", "NaN"),
    ("application/json", '"\\ud800"'),
    ("application/json", '{"\\ud800": "\\udc00\\ud800"}'),
    ("application/json", '{"a": "\\u0000"}'),
    ("application/json", b"\xff\xfe\x00"),
    ("application/json", b'{"a": "\xed\xa0\x80"}'),
    ("application/json", "{"),
    ("application/json", ""),
    ("application/json", "x" * (MAX_BODY_BYTES + 10)),
    ("application/json; charset=bogus", "{}"),
    ("application/json; charset=utf-16", "{}".encode("utf-16")),
    ("text/plain", "hello"),
    ("application/xml", "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>"),
    ("application/x-www-form-urlencoded", "a=%00&b=%ff&c=%ed%a0%80&" + "d=1&" * 50),
    ("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\x00\r\n--x--"),
    ("multipart/form-data", "no boundary"),
    ("", "{}"),
]

ERROR_KEYS = {"code", "message", "fields"}


def _api_schema(client) -> dict:
    response = client.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _operations(schema: dict):
    """(method, path template, body field names, query parameter names) of every operation."""
    components = schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            fields = []
            for content in operation.get("requestBody", {}).get("content", {}).values():
                ref = content.get("schema", {}).get("$ref", "")
                fields += list(components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}))
            query = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            yield method, path, sorted(set(fields)), query


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def assert_answer_is_fine(response, what: str) -> None:
    """No 5xx; an error is JSON in the one shape, with texts that are safe to show."""
    assert response.status_code < 500, f"{what}: {response.status_code} {response.content[:300]!r}"
    if response.status_code < 400:
        return
    content_type = response.get("Content-Type", "")
    assert content_type.startswith("application/json"), f"{what}: {response.status_code} {content_type}"
    body = json.loads(response.content)
    assert set(body) == {"error"} and set(body["error"]) == ERROR_KEYS, f"{what}: {body}"
    error = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and isinstance(error["fields"], dict)
    texts = [error["message"], *error["fields"], *(m for ms in error["fields"].values() for m in ms)]
    for text in texts:
        assert len(text) <= 1000, f"{what}: an error text of {len(text)} characters"
        assert not re.search("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2028\u2029\ud800-\udfff]", text), (
            f"{what}: raw control or format character in {text[:200]!r}"
        )


@pytest.fixture
def callers(pki, alice, approver, issue):
    from portal.services import api_token_create

    certificate = issue(alice, approver)
    return certificate.serial, {
        "approver": basic_client(approver),
        "employee": token_client(api_token_create(user=alice, name="hostile").plaintext),
        "anonymous": basic_client(),
    }


def _send(client, method: str, url: str, *, data=None, content_type="application/json", query=None):
    if query is not None:
        url = f"{url}?{urlencode(query, errors='surrogatepass')}"
    if data is None:
        return getattr(client, method)(url)
    raw = data if isinstance(data, bytes) else data.encode()
    return client.generic(method.upper(), url, raw, content_type=content_type)


def test_hostile_input_over_every_endpoint_is_never_a_server_error(callers):
    logging.disable(logging.WARNING)  # refusals log; thousands of lines help nobody here
    try:
        _hostile_run(callers)
    finally:
        logging.disable(logging.NOTSET)


def _share(values: list, index: int, step: int) -> list:
    """Every step-th value, starting at index: operations take turns, so together they send them all."""
    return values[index % step :: step]


def _hostile_run(callers):
    serial, clients = callers
    operations = [op for op in _operations(_api_schema(clients["approver"])) if not op[1].startswith("/api/v1/schema/")]
    assert len(operations) >= 25
    started = time.monotonic()
    sent = 0
    for role, client in clients.items():
        # The approver sends a third of each list per operation, the others an eighth (most stops at 401/403).
        step = 3 if role == "approver" else 8
        for number, (method, template, fields, query) in enumerate(operations):
            real = _fill(template, str(serial)) if "{serial}" in template else _fill(template, "1")
            requests = []
            if "{" in template:
                requests += [(_fill(template, value), None, None, None) for value in _share(PATH_VALUES, number, step)]
            for index, name in enumerate(query):
                requests += [(real, {name: value}, None, None) for value in _share(QUERY_VALUES, number + index, step)]
            if method not in {"get", "delete"}:
                # The whole body, then each field; lone surrogates go out as \ud800 escapes, as a client sends them.
                bodies = _share(BODY_VALUES, number, step)
                for index, field in enumerate(fields):
                    bodies += [{field: value} for value in _share(BODY_VALUES, number + index, 2 * step)]
                requests += [(real, None, json.dumps(body), "application/json") for body in bodies]
                requests += [(real, None, raw, kind) for kind, raw in _share(RAW_BODIES, number, step)]
            for url, query_values, data, content_type in requests:
                response = _send(client, method, url, query=query_values, data=data, content_type=content_type)
                shown = data if isinstance(data, str) else repr(data)
                assert_answer_is_fine(
                    response, f"{role} {method.upper()} {url[:100]} {query_values!r:.100} {content_type} {shown:.100}"
                )
            sent += len(requests)
            assert time.monotonic() - started < SECONDS, f"over {SECONDS} s after {sent} requests ({role} {template})"
    assert sent > 600, sent


# --- the parser's refusals, one by one ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("[" * 1500 + "]" * 1500, f"deeper than {MAX_DEPTH} levels"),
        ('{"reason": ' + "[" * 40 + "]" * 40 + "}", f"deeper than {MAX_DEPTH} levels"),
        ('{"reason": "\\ud800"}', "lone UTF-16 surrogate (\\ud800)"),
        ('{"\\udfff": "x"}', "lone UTF-16 surrogate (\\udfff)"),
        ('{"reason": "a\\u0000"}', "NUL character"),
        ('{"reason": 1e999}', "out of range"),
        ('{"reason": NaN}', "NaN is not a JSON number"),
        ('{"reason": ' + "1" * 100 + "}", "more than 40 digits"),
    ],
)
def test_the_json_parser_refuses_with_a_readable_400(callers, body, says):
    serial, clients = callers

    response = clients["approver"].post(f"/api/v1/certificates/{serial}/revoke/", body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "parse_error"
    assert says in response.json()["error"]["message"]


def test_brackets_inside_strings_do_not_count_as_depth_and_surrogate_pairs_are_characters(callers):
    from enrollment.models import Certificate

    serial, clients = callers
    body = json.dumps({"reason": "keyCompromise", "comment": "[[[[" * 50 + "\U0001f511"})  # 🔑 as a surrogate pair

    response = clients["approver"].post(f"/api/v1/certificates/{serial}/revoke/", body, content_type="application/json")

    assert response.status_code < 500
    assert "parse_error" not in response.content.decode()
    assert Certificate.objects.filter(serial=serial).exists()


def test_a_body_over_the_size_bound_is_a_413(callers):
    _, clients = callers

    response = clients["approver"].post(
        "/api/v1/tokens/", json.dumps({"name": "x" * MAX_BODY_BYTES}), content_type="application/json"
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_error_messages_escape_what_they_quote_and_stay_short(callers):
    _, clients = callers
    value = "\u202egnp.exe\u200b\x1b[31m\x85" + "A" * 5000

    response = clients["approver"].post("/api/v1/requests/", {"key_type": value}, format="json")

    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "\\u202egnp.exe\\u200b\\u001b[31m\\u0085" in message  # visible, not interpreted
    assert len(message) < 600 and message.endswith("…")


# --- JSON under /api/, DEBUG or not ---------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("get", "/api/v1/recoveries/abc/", 404),
        ("get", "/api/v1/no-such-thing/", 404),
        ("get", "/api/", 404),
        ("post", "/api/v1/requests", 404),  # no trailing slash: a hint, not a redirect a POST cannot follow
        ("get", "/api/v2/requests/", 404),
        ("put", "/api/v1/requests/", 405),
        ("delete", "/api/v1/ca/", 405),
    ],
)
def test_every_answer_under_api_is_json_whatever_debug_says(callers, debug, method, url, status):
    _, clients = callers
    with override_settings(DEBUG=debug):
        response = getattr(clients["approver"], method)(url)

    assert response.status_code == status
    assert_answer_is_fine(response, f"{method} {url}")


def test_an_address_without_its_trailing_slash_says_which_one_is_meant(callers):
    _, clients = callers

    response = clients["approver"].get("/api/v1/requests")

    assert response.status_code == 404
    assert "Did you mean /api/v1/requests/ ?" in response.json()["error"]["message"]


@pytest.mark.parametrize("debug", [False, True])
def test_415_and_406_are_json(callers, debug):
    _, clients = callers
    with override_settings(DEBUG=debug):
        unsupported = clients["approver"].post("/api/v1/requests/", "x", content_type="text/plain")
        unacceptable = clients["approver"].get("/api/v1/requests/", HTTP_ACCEPT="text/html")

    assert unsupported.status_code == 415 and unsupported.json()["error"]["code"] == "unsupported_media_type"
    assert unacceptable.status_code == 406 and unacceptable.json()["error"]["code"] == "not_acceptable"


@pytest.mark.parametrize("debug", [False, True])
def test_an_html_error_from_django_under_api_becomes_the_error_shape(rf, debug):
    """Django's own pages (here DEBUG's technical 500 and the 400 of a SuspiciousOperation) are rewritten."""
    from django.http import HttpResponse, HttpResponseBadRequest

    from core.outage import OutageMiddleware

    pages = [
        (HttpResponse("<html>Traceback …</html>", status=500), "server_error"),
        (HttpResponseBadRequest("<h1>Bad</h1>"), "invalid"),
    ]
    for page, code in pages:
        with override_settings(DEBUG=debug):
            response = OutageMiddleware(lambda request, page=page: page)(rf.get("/api/v1/requests/"))
        assert response.status_code == page.status_code and response["Content-Type"] == "application/json"
        assert "Traceback" not in response.content.decode()
        assert json.loads(response.content)["error"]["code"] == code
    # Outside /api/ the page is left alone.
    page = HttpResponseBadRequest("<h1>Bad</h1>")
    assert OutageMiddleware(lambda request: page)(rf.get("/request/")) is page


# --- the admin's lookups ------------------------------------------------------------------------------


@pytest.fixture
def superuser_client(make_user):
    from django.test import Client

    client = Client()
    client.force_login(make_user("root", superuser=True))
    return client


@pytest.mark.parametrize(
    "query",
    [
        "details__contains=x",  # JSON containment: SQLite has none (NotSupportedError, a 500)
        "details__contains=%7B%7D",
        "details__has_key=x",
        "id__gt=1",
        "hash__regex=(a%2B)%2B%24",
        "previous_hash__startswith=0",
        "actor__password__startswith=md5",
    ],
)
def test_an_admin_lookup_that_no_filter_offers_is_a_400(pki, superuser_client, query):
    logging.disable(logging.CRITICAL)  # django.security logs the refusal
    try:
        for url in ("/admin/audit/auditevent/", "/admin/audit/auditevent/export.csv"):
            response = superuser_client.get(f"{url}?{query}")
            assert response.status_code == 400, (url, query, response.status_code)
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.parametrize(
    "query",
    ["action=x", "q=abc", "q=%7B%7D", "timestamp__gte=2020-01-01", "since=2020-01-01&until=2020-02-01",
     "timestamp__year=2024&timestamp__month=2", "object_type=certificate", "actor__id__exact=1", "o=2"],
)
def test_the_admin_filters_on_the_page_still_filter(pki, superuser_client, query):
    response = superuser_client.get(f"/admin/audit/auditevent/?{query}")

    assert response.status_code == 200, (query, response.status_code)
