"""The audit log in the admin: auditors read, filter and export it; nobody changes it."""

import csv
import io

import pytest
from test_audit_api import append_event, utc
from test_verify_audit_log import tamper

from audit.models import AuditEvent
from audit.services import AUDIT_EXPORT_COLUMNS, audit_record

CHANGELIST = "/admin/audit/auditevent/"
EXPORT = "/admin/audit/auditevent/export.csv"


@pytest.fixture
def events(db, alice, bob, approver):
    return [
        append_event(timestamp=utc(2026, 10, 30, 9), action="request.created", actor=alice,
                     object_type="enrollment.certificaterequest", object_id="11"),
        append_event(timestamp=utc(2026, 11, 1, 10), action="request.approved", actor=approver,
                     object_type="enrollment.certificaterequest", object_id="11"),
        append_event(timestamp=utc(2026, 11, 2, 8), action="recovery.requested", actor=bob,
                     object_type="escrow.recoveryrequest", object_id="7", details={"reason": "lost laptop"}),
        append_event(timestamp=utc(2026, 11, 2, 9), action="request.created", actor=bob,
                     object_type="enrollment.certificaterequest", object_id="12", details={"note": "=1+1"}),
    ]


@pytest.fixture
def superuser(make_user):
    return make_user("root", superuser=True, employee=False)


@pytest.fixture
def pki_admin(make_user):
    from enrollment.roles import PKI_ADMINISTRATORS

    return make_user("pkiadmin", groups=[PKI_ADMINISTRATORS])


def logged_in(client, user):
    client.force_login(user)
    return client


def listed(response) -> list[int]:
    assert response.status_code == 200
    return sorted(event.pk for event in response.context["cl"].result_list)


def parse_csv(response) -> list[dict]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == AUDIT_EXPORT_COLUMNS
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


# --- Auditors read -----------------------------------------------------------------------


def test_auditor_sees_the_changelist_with_the_chain_verdict_and_the_detail_page(client, auditor, events):
    logged_in(client, auditor)
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Chain verified: intact" in html
    assert 'id="audit-export-csv"' in html
    assert "/admin/audit/auditevent/add/" not in html

    detail = client.get(f"{CHANGELIST}{events[2].pk}/change/")
    assert detail.status_code == 200
    page = detail.content.decode()
    assert events[2].hash in page and events[2].previous_hash in page and "lost laptop" in page
    assert "2026-11-02T08:00:00.000000+00:00" in page
    assert 'name="_save"' not in page  # view-only: no form to submit
    assert "/delete/" not in page


def test_chain_verdict_names_the_first_broken_event(client, auditor, events):
    tamper(lambda: AuditEvent.objects.filter(pk=events[1].pk).update(actor_name="nobody"))
    response = logged_in(client, auditor).get(CHANGELIST)
    assert f"Chain verified: broken at #{events[1].pk}" in response.content.decode()


def test_long_logs_are_verified_over_the_newest_window(db, events):
    from audit.selectors import audit_chain_status

    status = audit_chain_status(limit=2)
    assert (status.intact, status.checked, status.count) == (True, 2, AuditEvent.objects.count())
    assert "newest 2 of" in str(status) and "verify_audit_log" in str(status)
    tamper(lambda: AuditEvent.objects.filter(pk=events[-1].pk).update(details={}))
    assert audit_chain_status(limit=2).broken_at == events[-1].pk
    assert audit_chain_status().broken_at == events[-1].pk


def test_filters_and_search(client, auditor, events, bob):
    logged_in(client, auditor)
    assert listed(client.get(CHANGELIST, {"action": "request.created"})) == [events[0].pk, events[3].pk]
    assert listed(client.get(CHANGELIST, {"actor__id__exact": bob.pk})) == [events[2].pk, events[3].pk]
    assert listed(client.get(CHANGELIST, {"object_type": "escrow.recoveryrequest"})) == [events[2].pk]
    # Date: the hierarchy, and a range.
    assert listed(client.get(CHANGELIST, {"timestamp__year": 2026, "timestamp__month": 10})) == [events[0].pk]
    in_range = client.get(
        CHANGELIST, {"timestamp__gte": "2026-11-01 00:00:00+00:00", "timestamp__lt": "2026-11-02 00:00:00+00:00"}
    )
    assert listed(in_range) == [events[1].pk]
    # The from/to form (inclusive dates), which keeps the other filters.
    response = client.get(CHANGELIST, {"since": "2026-11-01", "until": "2026-11-02", "action": "request.created"})
    assert listed(response) == [events[3].pk]
    html = response.content.decode()
    assert '<input type="date" name="since" value="2026-11-01">' in html
    assert '<input type="hidden" name="action" value="request.created">' in html
    assert listed(client.get(CHANGELIST, {"until": "2026-10-31"})) == [events[0].pk]
    bad = client.get(CHANGELIST, {"since": "yesterday"})  # an error and nothing listed (tests/portal/test_readable_errors.py)
    assert bad.status_code == 400 and bad.context["cl"].result_count == 0
    assert client.get(EXPORT, {"since": "2026-02-30"}).status_code == 400
    rows = parse_csv(client.get(EXPORT, {"since": "2026-11-02", "until": "2026-11-02"}))
    assert [int(row["id"]) for row in rows] == [events[2].pk, events[3].pk]
    # Search: object id, actor name, details.
    assert listed(client.get(CHANGELIST, {"q": "12"})) == [events[3].pk]
    assert events[0].pk in listed(client.get(CHANGELIST, {"q": "alice"}))
    assert listed(client.get(CHANGELIST, {"q": "laptop"})) == [events[2].pk]


def test_export_button_exports_the_filtered_list_on_every_page(client, auditor, events):
    for index in range(120):  # more than one changelist page (100)
        audit_record(action="crl.generated", details={"n": index})
    logged_in(client, auditor)
    changelist = client.get(CHANGELIST, {"action": "crl.generated"})
    assert changelist.context["cl"].result_count == 120
    assert f'href="{EXPORT}?action=crl.generated"' in changelist.content.decode()

    rows = parse_csv(client.get(EXPORT, {"action": "crl.generated"}))
    assert len(rows) == 120
    assert [row["details"] for row in rows[:2]] == ['{"n": 0}', '{"n": 1}']

    rows = parse_csv(client.get(EXPORT, {"q": "laptop"}))
    assert [int(row["id"]) for row in rows] == [events[2].pk]
    assert rows[0]["hash"] == events[2].hash and rows[0]["actor"] == "bob"

    exported = AuditEvent.objects.filter(action="audit.exported").order_by("id")
    assert [(e.actor_name, e.details["via"], e.details["filters"]) for e in exported] == [
        ("auditor", "admin", {"action": "crl.generated"}),
        ("auditor", "admin", {"q": "laptop"}),
    ]
    assert client.get(EXPORT, {"no_such_field": "x"}).status_code == 400


def test_export_action_exports_the_selected_events_with_formulas_defused(client, auditor, events):
    logged_in(client, auditor)
    response = client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [events[3].pk, events[1].pk], "index": 0}
    )
    rows = parse_csv(response)
    assert [int(row["id"]) for row in rows] == [events[1].pk, events[3].pk]
    assert rows[1]["details"] == '{"note": "=1+1"}'  # starts with {, so left alone

    user = AuditEvent.objects.get(pk=events[0].pk).actor
    user.username = "-bob"  # Django's username validator allows @ + - at the start
    user.save()
    append_event(timestamp=utc(2026, 11, 3), action="request.created", actor=user, object_id="@1")
    rows = parse_csv(client.get(EXPORT, {"q": "-bob"}))
    assert (rows[-1]["actor"], rows[-1]["object_id"]) == ("'-bob", "'@1")


# --- Nobody changes anything -------------------------------------------------------------


@pytest.mark.parametrize("who", ["auditor", "superuser"])
def test_add_change_delete_are_forbidden_even_for_superusers(client, request, events, who):
    logged_in(client, request.getfixturevalue(who))
    event = events[1]
    before = list(AuditEvent.objects.order_by("id").values())

    assert client.get(f"{CHANGELIST}add/").status_code == 403
    assert client.post(f"{CHANGELIST}add/", {"action": "forged"}).status_code == 403
    assert client.get(f"{CHANGELIST}{event.pk}/delete/").status_code == 403
    assert client.post(f"{CHANGELIST}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"{CHANGELIST}{event.pk}/change/", {"action": "forged", "actor_name": "x"}).status_code == 403

    changelist = client.get(CHANGELIST)
    choices = [name for name, _ in changelist.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in choices and "export_csv" in choices
    response = client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"})
    assert response.status_code in (200, 302)

    assert list(AuditEvent.objects.exclude(action__startswith="auth.").order_by("id").values()) == [
        row for row in before if not row["action"].startswith("auth.")
    ]


# --- Others do not read it ---------------------------------------------------------------


@pytest.mark.parametrize("who", ["approver", "pki_admin"])
def test_staff_without_the_auditor_role_get_403(client, request, events, who):
    logged_in(client, request.getfixturevalue(who))
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(f"{CHANGELIST}{events[0].pk}/change/").status_code == 403
    assert client.get(EXPORT).status_code == 403
    index = client.get("/admin/")
    assert index.status_code == 200 and "/admin/audit/auditevent/" not in index.content.decode()
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_an_employee_is_sent_to_the_admin_login(client, alice, events):
    logged_in(client, alice)
    for url in (CHANGELIST, EXPORT, f"{CHANGELIST}{events[0].pk}/change/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url
