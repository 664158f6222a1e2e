"""GET /api/v1/audit-events/ (and .csv): auditors only, filters, pages, CSV, and no writes."""

import base64
import csv
import io
from datetime import datetime
from datetime import timezone as dt_timezone

import pytest
from audit_testing import keyed_event
from portal_testing import PASSWORD
from rest_framework.test import APIClient

from audit.chain import GENESIS_HASH, audit_chain_breaks, event_mac
from audit.models import AuditEvent
from audit.services import AUDIT_EXPORT_COLUMNS, audit_record

LIST = "/api/v1/audit-events/"
CSV = "/api/v1/audit-events.csv"


def basic_client(user) -> APIClient:
    """HTTP Basic, as API clients call it (each request hashes the password: slow, so used sparingly)."""
    client = APIClient()
    token = base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {token}")
    return client


def client_for(user) -> APIClient:
    """A logged-in session (or an anonymous client)."""
    client = APIClient()
    if user is not None:
        client.force_login(user)
    return client


def append_event(*, timestamp: datetime, action: str, actor=None, object_type="", object_id="", details=None):
    """An event at a chosen time, chained and keyed exactly as audit_record does (which always uses now)."""
    previous = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS_HASH
    fields = {
        "timestamp": timestamp,
        "actor_id": actor.pk if actor else None,
        "actor_name": actor.username if actor else "",
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "source_ip": "192.0.2.7",
        "details": details or {},
        "previous_hash": previous,
    }
    return keyed_event(**fields)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=dt_timezone.utc)


@pytest.fixture
def events(db, alice, bob, approver):
    """Nine events over three days in November 2026 (plus whatever fixtures recorded before)."""
    made = [
        append_event(timestamp=utc(2026, 11, 1, 9), action="request.created", actor=alice,
                     object_type="enrollment.certificaterequest", object_id="1"),
        append_event(timestamp=utc(2026, 11, 1, 10), action="request.approved", actor=approver,
                     object_type="enrollment.certificaterequest", object_id="1"),
        append_event(timestamp=utc(2026, 11, 1, 10, 0, 1), action="certificate.issued",
                     object_type="enrollment.certificate", object_id="1", details={"serial": "0a1b"}),
        append_event(timestamp=utc(2026, 11, 2, 8), action="recovery.requested", actor=bob,
                     object_type="escrow.recoveryrequest", object_id="7"),
        append_event(timestamp=utc(2026, 11, 2, 9), action="recovery.approved", actor=approver,
                     object_type="escrow.recoveryrequest", object_id="7"),
        append_event(timestamp=utc(2026, 11, 2, 23, 59, 59), action="recovery.completed", actor=bob,
                     object_type="escrow.recoveryrequest", object_id="7"),
        append_event(timestamp=utc(2026, 11, 3, 0, 0), action="request.created", actor=bob,
                     object_type="enrollment.certificaterequest", object_id="2"),
        append_event(timestamp=utc(2026, 11, 3, 12), action="recoveryish.unrelated", actor=bob),
        append_event(timestamp=utc(2026, 11, 3, 13), action="request.rejected", actor=approver,
                     object_type="enrollment.certificaterequest", object_id="2", details={"reason": "duplicate"}),
    ]
    assert audit_chain_breaks(AuditEvent.objects.order_by("id")) is None
    return made


@pytest.fixture
def pki_admin(make_user):
    from enrollment.roles import PKI_ADMINISTRATORS

    return make_user("pkiadmin", groups=[PKI_ADMINISTRATORS])


@pytest.fixture
def superuser(make_user):
    return make_user("root", superuser=True, employee=False)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def ids_of(events) -> list[int]:
    return [event.pk for event in events]


# --- Who may read ---------------------------------------------------------------------------


def test_anonymous_gets_401_with_the_json_error_shape(events):
    for url in (LIST, CSV, LIST + "?format=csv"):
        response = client_for(None).get(url)
        assert response.status_code == 401, url
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["error"]["code"] == "not_authenticated"
        assert response["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("who", ["alice", "approver", "pki_admin"])
def test_employees_approvers_and_pki_administrators_get_403(events, request, who):
    user = request.getfixturevalue(who)
    for url in (LIST, CSV, LIST + "?format=csv"):
        response = client_for(user).get(url)
        assert response.status_code == 403, (who, url)
        assert response["Content-Type"].startswith("application/json")
        assert response.json() == {
            "error": {"code": "permission_denied", "message": "Only auditors can read the audit log.", "fields": {}}
        }


@pytest.mark.parametrize("who", ["auditor", "superuser"])
def test_auditors_and_superusers_read_all_fields(events, request, who):
    response = basic_client(request.getfixturevalue(who)).get(LIST, {"page_size": 200})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == AuditEvent.objects.count()
    row = next(row for row in body["results"] if row["id"] == events[2].pk)
    assert list(row) == AUDIT_EXPORT_COLUMNS
    assert row == {
        "id": events[2].pk,
        "timestamp": "2026-11-01T10:00:01.000000+00:00",
        "actor_id": None,
        "actor": "",
        "action": "certificate.issued",
        "object_type": "enrollment.certificate",
        "object_id": "1",
        "source_ip": "192.0.2.7",
        "details": {"serial": "0a1b"},
        "previous_hash": events[1].hash,
        "hash": events[2].hash,
        "key_id": events[2].key_id,
    }
    assert events[2].key_id
    # Timestamps keep their microseconds, as hashed.
    event = audit_record(action="kra.imported")
    latest = client_for(request.getfixturevalue(who)).get(LIST, {"object_type": "", "action": "kra.imported"})
    assert latest.json()["results"][0]["timestamp"] == event.timestamp.isoformat(timespec="microseconds")


# --- Filters --------------------------------------------------------------------------------


def test_filter_by_exact_action_and_by_prefix(events, auditor):
    api = client_for(auditor)
    assert ids(api.get(LIST, {"action": "request.created"})) == ids_of([events[0], events[6]])
    recovery = ids_of(events[3:6])
    assert ids(api.get(LIST, {"action": "recovery."})) == recovery  # not recoveryish.unrelated
    assert ids(api.get(LIST, {"action": "recovery.*"})) == recovery
    assert ids(api.get(LIST, {"action": "recovery"})) == []  # exact: no such event type


def test_filter_by_actor_object_type_and_object_id(events, auditor, bob, approver):
    api = client_for(auditor)
    assert ids(api.get(LIST, {"actor": "bob"})) == ids_of([events[3], events[5], events[6], events[7]])
    assert ids(api.get(LIST, {"actor": "approver", "action": "recovery."})) == [events[4].pk]
    assert ids(api.get(LIST, {"object_type": "escrow.recoveryrequest"})) == ids_of(events[3:6])
    assert ids(api.get(LIST, {"object_type": "enrollment.certificaterequest", "object_id": "2"})) == ids_of(
        [events[6], events[8]]
    )
    assert ids(api.get(LIST, {"actor": "nobody"})) == []


def test_filter_by_date_range(events, auditor):
    api = client_for(auditor)
    # A date `until` includes that whole day; `since` starts at its midnight (UTC).
    assert ids(api.get(LIST, {"since": "2026-11-02", "until": "2026-11-02"})) == ids_of(events[3:6])
    assert ids(api.get(LIST, {"since": "2026-11-03", "until": "2026-11-04T00:00:00Z"})) == ids_of(events[6:9])
    # Date-times: since inclusive, until exclusive; offsets are honoured.
    assert ids(api.get(LIST, {"since": "2026-11-01T10:00:00Z", "until": "2026-11-02T09:00:00Z"})) == ids_of(
        events[1:4]
    )
    assert ids(api.get(LIST, {"since": "2026-11-02T10:00:00+01:00", "until": "2026-11-02T10:00:01+01:00"})) == [
        events[4].pk
    ]
    assert ids(api.get(LIST, {"until": "2026-11-01T10:00:00"})) == ids_of(
        [e for e in AuditEvent.objects.order_by("id") if e.timestamp < utc(2026, 11, 1, 10)]
    )


@pytest.mark.parametrize(
    "params, field",
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-02-30"}, "since"),
        ({"until": "9999-12-31"}, "until"),
        ({"until": "2026-11-02T25:00:00Z"}, "until"),
        ({"until": "02/11/2026"}, "until"),
        ({"since": "2026-11-03", "until": "2026-11-01"}, "until"),
        ({"action": "x" * 100}, "action"),
        ({"actor": "nul\x00byte"}, "actor"),
    ],
)
def test_invalid_filters_are_400_naming_the_field(events, auditor, params, field):
    for url in (LIST, CSV):
        response = client_for(auditor).get(url, params)
        assert response.status_code == 400, (url, response.content)
        assert response["Content-Type"].startswith("application/json")
        error = response.json()["error"]
        assert error["code"] == "invalid"
        assert list(error["fields"]) == [field]
        assert error["message"].startswith(f"{field}: ")
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


# --- Pages ----------------------------------------------------------------------------------


def test_pages_walk_the_log_in_id_order_without_gaps_or_repeats(events, auditor):
    api = client_for(auditor)
    total = AuditEvent.objects.count()
    seen, url, params = [], LIST, {"page_size": 2}
    while url:
        response = api.get(url, params)
        body = response.json()
        assert body["count"] == total and len(body["results"]) <= 2
        seen += [row["id"] for row in body["results"]]
        url, params = body["next"], None
    assert seen == sorted(seen) == list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    response = api.get(LIST, {"page": 999, "page_size": 2})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# --- CSV ------------------------------------------------------------------------------------


def parse_csv(response) -> list[dict]:
    assert response.status_code == 200, response
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-events-')
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    assert header == AUDIT_EXPORT_COLUMNS
    return [dict(zip(header, row, strict=True)) for row in reader]


@pytest.mark.parametrize("how", ["suffix", "format", "accept"])
def test_csv_holds_the_same_filtered_events_on_one_streamed_sheet(events, auditor, how):
    api = client_for(auditor)
    params = {"since": "2026-11-02", "action": "recovery."}
    if how == "suffix":
        response = api.get(CSV, params)
    elif how == "format":
        response = api.get(LIST, {**params, "format": "csv"})
    else:
        response = api.get(LIST, params, HTTP_ACCEPT="text/csv")
    rows = parse_csv(response)
    json_rows = api.get(LIST, params).json()["results"]
    assert [int(row["id"]) for row in rows] == [row["id"] for row in json_rows] == ids_of(events[3:6])
    first = rows[0]
    assert first["timestamp"] == "2026-11-02T08:00:00.000000+00:00"
    assert (first["actor"], first["action"], first["object_type"], first["object_id"], first["source_ip"]) == (
        "bob", "recovery.requested", "escrow.recoveryrequest", "7", "192.0.2.7"
    )
    assert (first["previous_hash"], first["hash"]) == (events[2].hash, events[3].hash)


def test_csv_has_every_matching_event_not_just_one_page(events, auditor):
    for index in range(60):
        audit_record(action="crl.generated", details={"n": index})
    rows = parse_csv(client_for(auditor).get(CSV, {"action": "crl.generated"}))
    assert len(rows) == AuditEvent.objects.filter(action="crl.generated").count() == 60
    assert [row["details"] for row in rows[:2]] == ['{"n": 0}', '{"n": 1}']
    api = client_for(auditor)  # (logging in is an event too)
    before = AuditEvent.objects.count()  # including the first export's own event
    everything = parse_csv(api.get(CSV))
    assert len(everything) == before == AuditEvent.objects.count() - 1


def test_csv_export_is_itself_audited_and_not_part_of_its_own_sheet(events, auditor):
    api = client_for(auditor)
    rows = parse_csv(api.get(CSV, {"actor": "auditor", "action": "audit."}))
    assert rows == []
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.actor_name == "auditor"
    assert exported.details == {"via": "api", "format": "csv", "filters": {"actor": "auditor", "action": "audit."}}
    rows = parse_csv(api.get(CSV, {"actor": "auditor", "action": "audit."}))
    assert [row["action"] for row in rows] == ["audit.exported"]
    assert audit_chain_breaks(AuditEvent.objects.order_by("id")) is None


def test_csv_cells_cannot_become_spreadsheet_formulas(db, make_user, auditor):
    # Usernames may start with @ + - (Django's validator allows @.+-_); actions and ids come from code,
    # but the export guards every cell anyway.
    user = make_user("@SUM", employee=False)
    append_event(timestamp=utc(2026, 11, 5), action="=HYPERLINK(\"http://evil\")", actor=user, object_id="-1+1")
    append_event(timestamp=utc(2026, 11, 5), action="+cmd", object_type="\tx", object_id="@x")
    rows = parse_csv(client_for(auditor).get(CSV, {"since": "2026-11-05", "until": "2026-11-05"}))
    assert (rows[0]["actor"], rows[0]["action"], rows[0]["object_id"]) == (
        "'@SUM", "'=HYPERLINK(\"http://evil\")", "'-1+1"
    )
    assert (rows[1]["action"], rows[1]["object_type"], rows[1]["object_id"]) == ("'+cmd", "'\tx", "'@x")
    for row in rows:
        assert not any(value[:1] in ("=", "+", "-", "@", "\t") for value in row.values())
    # The JSON API returns the stored values unchanged.
    assert client_for(auditor).get(LIST, {"actor": "@SUM"}).json()["results"][0]["actor"] == "@SUM"


# --- No writes ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_writes_are_405_even_for_superusers(events, auditor, superuser, method):
    clients = [client_for(auditor), client_for(superuser)]
    before = list(AuditEvent.objects.order_by("id").values())
    for api in clients:
        for url in (LIST, CSV, f"{LIST}{events[0].pk}/"):
            response = getattr(api, method)(url, {"action": "forged"}, format="json")
            if url.endswith(f"/{events[0].pk}/"):
                assert response.status_code == 404, (method, url)  # there is no detail route at all
            else:
                assert response.status_code == 405, (method, url)
                assert response.json()["error"]["code"] == "method_not_allowed"
    assert list(AuditEvent.objects.order_by("id").values()) == before


# --- Generated requests (schemathesis) ------------------------------------------------------


def test_generated_queries_never_crash_and_match_the_schema(events, auditor, settings):
    """Many random valid and invalid filter combinations on both routes, as an auditor."""
    import schemathesis
    from django.core import signals
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import close_old_connections
    from hypothesis import HealthCheck, Phase, given
    from hypothesis import settings as hypothesis_settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import response_schema_conformance

    auditor.set_password(PASSWORD)
    auditor.save()
    schema = schemathesis.openapi.from_dict(client_for(None).get("/api/v1/schema/", {"format": "json"}).json())
    headers = {"Authorization": basic_client(auditor)._credentials["HTTP_AUTHORIZATION"]}
    statuses = []
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        app = WSGIHandler()
        operations = [op.ok() for op in schema.get_all_operations() if "audit-events" in op.ok().path]
        assert len(operations) == 2
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @hypothesis_settings(
                    max_examples=25, deadline=None, database=None, derandomize=True,
                    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                )
                @given(case=operation.as_strategy(generation_mode=mode))
                def run(case):
                    response = case.call_and_validate(
                        app=app, headers=headers, checks=[not_a_server_error, response_schema_conformance]
                    )
                    statuses.append(response.status_code)

                run()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    assert {200, 400} <= set(statuses), statuses


def test_an_outside_auditor_can_recompute_the_chain_from_the_csv_alone(db, make_user, auditor):
    import csv
    import io
    import json

    alice = make_user("alice-csv")
    audit_record(action="ca.created", actor=alice, details={"a": 1, "text": "\u00e9t\u00e9"})
    audit_record(action="crl.generated", details={"b": [1, 2]})
    response = basic_client(auditor).get(LIST, {"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    from datetime import datetime

    previous = GENESIS_HASH
    for row in rows:
        recomputed = event_mac(  # the auditor is given the chain keys (the HMAC's, by key_id)
            key_id=row["key_id"],
            timestamp=datetime.fromisoformat(row["timestamp"]),
            actor_id=int(row["actor_id"]) if row["actor_id"] else None,
            actor_name=row["actor"],
            action=row["action"],
            object_type=row["object_type"],
            object_id=row["object_id"],
            source_ip=row["source_ip"] or None,
            details=json.loads(row["details"]),
            previous_hash=row["previous_hash"],
        )
        assert row["previous_hash"] == previous and recomputed == row["hash"], row["id"]
        previous = row["hash"]
    assert len(rows) >= 2
