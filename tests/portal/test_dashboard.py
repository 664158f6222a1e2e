"""The admin dashboard (admin:dashboard): its numbers against seeded rows, every link, each role, bounded queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from dashboard_testing import make_certificate, seeded  # noqa: F401 - fixtures
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from second_factor_testing import enforced, enrol, unverified_client, verified_client  # noqa: F401 - fixtures

from enrollment.roles import APPROVERS, AUDITORS, KEY_RECOVERY_AGENTS, PKI_ADMINISTRATORS

DASHBOARD = "/admin/dashboard/"


def _client(make_user, role: str):
    groups = {
        "auditor": [AUDITORS],
        "pki admin": [PKI_ADMINISTRATORS],
        "approver": [APPROVERS],
        "agent": [KEY_RECOVERY_AGENTS],
    }
    if role == "superuser":
        user = make_user("role-superuser", superuser=True)
    else:
        user = make_user(f"role-{role.replace(' ', '-')}", groups=groups[role])
    return verified_client(user, enrol(user))


def _rows(response) -> dict[tuple[str, str], object]:
    return {(panel.key, row.label): row for panel in response.context["panels"] for row in panel.rows}


def test_the_numbers_are_those_of_the_seeded_rows(seeded, make_user):
    response = _client(make_user, "pki admin").get(DASHBOARD)
    assert response.status_code == 200
    rows = _rows(response)
    issued = [int(row.value) for (key, _), row in rows.items() if key == "issued"]
    assert issued == seeded["issued_week"]
    assert [rows["expiring", f"within {days} days"].value for days in (30, 60, 90)] == ["2", "3", "4"]
    assert rows["not-downloaded", "download window open"].value == "1"
    assert rows["not-downloaded", "download window closed"].value == "1"
    assert rows["revocations", "key compromise"].value == "2"
    assert rows["revocations", "superseded"].value == "1"
    assert rows["requests", "Pending"].value == "2"
    assert rows["requests", "Approved, issuing"].value == "1"
    assert rows["requests", "Failed"].value == "1"
    assert rows["requests", "Issued"].value == str(8 + 4 + 3)
    assert [rows["recoveries", status].value for status in ("Pending", "Approved", "Completed", "Expired")] == [
        "1",
        "1",
        "1",
        "0",
    ]
    assert rows["directory", "publication failed (retried)"].value == "2"
    assert rows["directory", "removal failed (retried)"].value == "1"
    assert rows["revocation-failures", "revoked, not yet on the CRL"].value == "1"
    assert rows["revocation-failures", "revoked, removal from the directory failed"].value == "1"
    assert rows["freshness", "Test S/MIME CA: CRL"].value == "fresh"
    assert rows["freshness", "Test Root CA: CRL"].value == "missing"
    # The charts are there, drawn from the same numbers.
    html = response.content.decode()
    assert html.count('role="img"') == 6
    assert "Pending: 1; Approved: 1; Rejected: 0; Completed: 1; Withdrawn: 0; Expired: 0." in html


@pytest.mark.parametrize("role", ["pki admin", "auditor"])
def test_every_number_links_to_a_list_of_exactly_those_rows(seeded, make_user, role):
    client = _client(make_user, role)
    response = client.get(DASHBOARD)
    links = [(key, row) for (key, _), row in _rows(response).items() if row.href]
    assert len(links) >= 30
    for key, row in links:
        page = client.get(row.href)
        assert page.status_code == 200, (key, row.label, row.href, page.status_code)
        if "/change/" in row.href:
            continue  # a CA's page: its CRL and OCSP state in words
        changelist = page.context["cl"]
        if row.value.isdigit():
            assert changelist.result_count == int(row.value), (key, row.label, row.href)
        assert row.href in response.content.decode().replace("&amp;", "&")


def test_the_list_behind_a_number_shows_those_rows(seeded, make_user):
    client = _client(make_user, "pki admin")
    page = client.get(reverse("admin:enrollment_certificate_changelist") + "?expires_within=30")
    ends = [certificate.not_after for certificate in page.context["cl"].result_list]
    assert len(ends) == 2 and all(timezone.now() < end < timezone.now() + timedelta(days=30) for end in ends)


@pytest.mark.parametrize(
    "query",
    [
        "expires_within=7",
        "expires_within=",
        "issued_week=2026-11-31",
        "issued_week=2026-12-01",
        "key_pickup=all",
        "revocation_reason=bogus",
        "on_crl=yes",
    ],
)
def test_a_value_the_filters_do_not_offer_is_refused_not_ignored(seeded, make_user, query):
    client = _client(make_user, "pki admin")
    response = client.get(reverse("admin:enrollment_certificate_changelist") + "?" + query)
    # core.admin_tools: the error above an empty list (400), never the whole list, never a 500.
    assert response.status_code == 400
    assert response.context["cl"].result_count == 0
    assert f"the filter {query.split('=')[0]}=" in response.content.decode()


def test_a_monday_outside_the_chart_filters_too(seeded, make_user):
    client = _client(make_user, "pki admin")
    week = seeded["weeks"][0] - timedelta(weeks=1)
    page = client.get(reverse("admin:enrollment_certificate_changelist") + f"?issued_week={week.isoformat()}")
    assert page.status_code == 200 and page.context["cl"].result_count == 1


@pytest.mark.parametrize(
    ("role", "panels"),
    [
        (
            "auditor",
            {
                "issued",
                "expiring",
                "not-downloaded",
                "revocations",
                "requests",
                "recoveries",
                "directory",
                "revocation-failures",
                "freshness",
                "audit",
            },
        ),
        # Not the audit log: it is the Auditors' (enrollment/roles.py).
        (
            "pki admin",
            {
                "issued",
                "expiring",
                "not-downloaded",
                "revocations",
                "requests",
                "recoveries",
                "directory",
                "revocation-failures",
                "freshness",
            },
        ),
        (
            "superuser",
            {
                "issued",
                "expiring",
                "not-downloaded",
                "revocations",
                "requests",
                "recoveries",
                "directory",
                "revocation-failures",
                "freshness",
                "audit",
            },
        ),
    ],
)
def test_auditors_pki_administrators_and_superusers_see_the_panels_they_may_open(
    pki, make_user, settings, tmp_path, role, panels
):
    settings.PORTAL_AUDIT_ANCHOR_FILE = tmp_path / "anchors.jsonl"
    response = _client(make_user, role).get(DASHBOARD)
    assert response.status_code == 200
    assert {panel.key for panel in response.context["panels"]} == panels


@pytest.mark.parametrize("role", ["approver", "agent"])
def test_other_trusted_roles_are_refused(pki, make_user, role):
    assert _client(make_user, role).get(DASHBOARD).status_code == 403


def test_anonymous_and_employees_get_the_admin_log_in(pki, alice):
    from django.test import Client

    for client in (Client(), unverified_client(alice)):
        response = client.get(DASHBOARD)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_an_auditor_without_the_second_factor_is_sent_to_it(pki, make_user, enforced):  # noqa: F811
    auditor = make_user("auditor-2fa", groups=[AUDITORS])
    enrol(auditor)
    response = unverified_client(auditor).get(DASHBOARD)
    assert response.status_code == 302 and "/admin/dashboard/" not in response["Location"].split("?")[0]
    assert verified_client(auditor).get(DASHBOARD).status_code == 200


def test_the_queries_are_bounded_whatever_the_number_of_rows(
    seeded, make_user, pki, bob, django_assert_max_num_queries
):
    client = _client(make_user, "auditor")
    client.get(DASHBOARD)  # warm: sessions, permissions cache
    with CaptureQueriesContext(connection) as before:
        assert client.get(DASHBOARD).status_code == 200
    for days in range(1, 40):
        make_certificate(pki, bob.employee, created_days_ago=days, expires_in_days=days)
    # The page: the session, the user, the second factor, the role checks of the header (about ten), the panels.
    with django_assert_max_num_queries(25), CaptureQueriesContext(connection) as after:
        assert client.get(DASHBOARD).status_code == 200
    assert len(after) == len(before)


def test_the_panels_take_one_query_each_at_most(seeded, make_user, settings, django_assert_max_num_queries):
    from audit.services import audit_checkpoint
    from portal.admin_dashboard import dashboard_panels

    settings.PORTAL_AUDIT_ANCHOR_KEY = "k" * 40
    audit_checkpoint()
    auditor = make_user("counted-auditor", groups=[AUDITORS])
    auditor.has_perm("enrollment.view_certificate")  # the permissions, read once per request
    # The CAs, certificates (2), failed revocations, pickups, requests, recoveries, directory; the audit
    # log: count, window, newest event, the anchored head and its count.
    with django_assert_max_num_queries(13):
        panels = dashboard_panels(auditor)
    assert len(panels) == 10


def test_the_audit_panel_says_when_the_chain_is_broken_and_whether_the_checkpoint_holds(
    pki, make_user, settings, tmp_path
):
    from portal_testing import audit_tamper

    from audit.models import AuditEvent
    from audit.services import audit_checkpoint
    from audit.verification import audit_chain_verify_full

    settings.PORTAL_AUDIT_ANCHOR_FILE = tmp_path / "anchors.jsonl"
    settings.PORTAL_AUDIT_ANCHOR_KEY = "k" * 40
    client = _client(make_user, "auditor")
    audit = lambda: {row.label: row for row in _panel(client.get(DASHBOARD), "audit").rows}  # noqa: E731
    assert audit()["hash chain"].value == "intact"
    assert audit()["newest checkpoint"].value == "not verified"
    assert "no checkpoint yet" in audit()["newest checkpoint"].detail

    anchor = audit_checkpoint()
    assert audit()["newest checkpoint"].value == "holds"
    assert f"event #{anchor.last_id}" in audit()["newest checkpoint"].detail

    event = AuditEvent.objects.order_by("id").first()
    audit_tamper(lambda: AuditEvent.objects.filter(pk=event.pk).update(details={"forged": True}))
    audit_chain_verify_full()  # an old event: the full re-verification (daily job, verify_audit_log) finds it
    assert audit()["hash chain"].value == "broken"
    audit_tamper(lambda: AuditEvent.objects.filter(pk=anchor.last_id).delete())
    rows = audit()
    assert rows["newest checkpoint"].value == "not verified"
    assert f"event #{anchor.last_id} is missing" in rows["newest checkpoint"].detail


def _panel(response, key):
    return next(panel for panel in response.context["panels"] if panel.key == key)


def test_the_dashboard_reads_only(seeded, make_user):
    from admin_matrix_testing import db_fingerprint

    client = _client(make_user, "auditor")
    before = db_fingerprint()
    assert client.get(DASHBOARD).status_code == 200
    assert db_fingerprint() == before


def test_the_counts_on_an_empty_database(db):
    from enrollment.selectors_dashboard import certificate_counts, revocation_health

    now = timezone.now()
    counts = certificate_counts(now=now)
    assert [n for _, n in counts.issued_by_week] == [0] * 12
    assert counts.expiring == {30: 0, 60: 0, 90: 0}
    assert (counts.revoked_by_reason, counts.revoked_after_crl) == ([], 0)
    assert revocation_health(now=now) == ([], [])


def test_the_week_filter_shows_in_the_sidebar_only_while_in_use(seeded, make_user):
    client = _client(make_user, "pki admin")
    changelist = reverse("admin:enrollment_certificate_changelist")
    plain = client.get(changelist)
    titles = {spec.title for spec in plain.context["cl"].filter_specs}
    assert "issued in the week of" not in titles and {"expires within", "key never downloaded"} <= titles
    week = seeded["weeks"][-2]
    filtered = client.get(f"{changelist}?issued_week={week.isoformat()}")
    assert "issued in the week of" in {spec.title for spec in filtered.context["cl"].filter_specs}
    assert filtered.context["cl"].result_count == 3 < plain.context["cl"].result_count


@pytest.mark.parametrize("failure", ["conflicts", "unexpected"])
def test_a_failed_revocation_is_audited_and_counted_until_it_is_done(issued, make_user, monkeypatch, failure):
    """A revocation that fails rolls back; the audit log keeps it and the dashboard counts it while the
    certificate is still valid (issue 12: revocation failures are counted on the dashboard)."""
    from audit.models import AuditEvent
    from core.exceptions import TryAgain
    from enrollment.models import Certificate
    from enrollment.revocation import services as revocation

    certificate = issued
    errors = {"conflicts": TryAgain("Conflicting transactions; try again."), "unexpected": RuntimeError("disk full")}

    def fail(**_):
        raise errors[failure]

    with monkeypatch.context() as patched:
        patched.setattr(revocation, "_certificate_revoke", fail)
        with pytest.raises(type(errors[failure])):
            revocation.certificate_revoke(serial=certificate.serial, actor=None, reason="key_compromise")
    certificate.refresh_from_db()
    assert certificate.status == Certificate.Status.VALID
    event = AuditEvent.objects.get(action="certificate.revocation_failed")
    assert event.object_id == str(certificate.pk)
    assert event.details["serial"] == certificate.serial and event.details["reason"] == "key_compromise"
    assert event.details["error"] == {"conflicts": "conflicting transactions", "unexpected": "RuntimeError"}[failure]

    client = _client(make_user, "auditor")
    row = _rows(client.get(DASHBOARD))["revocation-failures", "revocation failed in the last 30 days, still valid"]
    assert (row.value, row.tone) == ("1", "bad")
    listed = client.get(row.href)
    assert [e.pk for e in listed.context["cl"].result_list] == [event.pk]

    revocation.certificate_revoke(serial=certificate.serial, actor=None, reason="key_compromise")
    row = _rows(client.get(DASHBOARD))["revocation-failures", "revocation failed in the last 30 days, still valid"]
    assert (row.value, row.tone) == ("0", "good")


def test_a_refused_revocation_is_no_failure(issued, bob):
    from audit.models import AuditEvent
    from core.exceptions import NotFound
    from enrollment.revocation.services import certificate_revoke

    certificate = issued
    with pytest.raises(NotFound):
        certificate_revoke(serial=certificate.serial, actor=bob, reason="key_compromise")
    assert not AuditEvent.objects.filter(action="certificate.revocation_failed").exists()
