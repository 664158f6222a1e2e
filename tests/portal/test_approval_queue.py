"""The approver's side of the admin: the queue (pending by default), Approve / Reject buttons,
separation of duties said before anyone tries (and still enforced), one summary line per bulk
action, the pending count on the admin home, the employee add form, requests on someone's behalf.

The browser side (the busy Go button, the columns at 1280 px) is tests/e2e/test_browser_queue.py.
"""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import NoReverseMatch, reverse
from portal_testing import PASSWORD
from second_factor_testing import enforced, to_second_factor, unverified_client  # noqa: F401 - fixture

from audit.models import AuditEvent
from enrollment.models import CertificateRequest, Employee
from enrollment.selectors import request_duty_conflict
from enrollment.services.requests import (
    certificate_request_approve,
    certificate_request_create,
    certificate_request_reject,
)

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:enrollment_certificaterequest_changelist")


def _approve_url(request) -> str:
    return reverse("admin:enrollment_certificaterequest_approve", args=[request.pk])


def _reject_url(request) -> str:
    return reverse("admin:enrollment_certificaterequest_reject", args=[request.pk])


def _client(user) -> Client:
    client = Client()
    assert client.login(username=user.get_username(), password=PASSWORD)
    return client


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _request(employee_user, *, submitted_by=None, key_type="ec-p256"):
    return certificate_request_create(
        employee=employee_user.employee, submitted_by=submitted_by or employee_user, key_type=key_type
    )




# --- The queue -------------------------------------------------------------------------------


def test_the_queue_shows_pending_requests_by_default_and_every_state_on_request(pki, alice, bob, approver, approver2):
    pending = _request(alice)
    rejected = _request(bob)
    certificate_request_reject(request_id=rejected.pk, approver=approver2, reason="duplicate")
    client = _client(approver)

    queue = client.get(CHANGELIST)
    assert queue.status_code == 200
    assert [r.pk for r in queue.context["cl"].result_list] == [pending.pk]
    assert queue.context["title"] == "Approval queue: 1 request waiting for approval"
    state_filter = next(spec for spec in queue.context["cl"].filter_specs if spec.field_path == "state")
    choices = {choice["display"]: choice for choice in state_filter.choices(queue.context["cl"])}
    assert choices["Pending"]["selected"] and not choices["All"]["selected"]

    everything = client.get(CHANGELIST + choices["All"]["query_string"])
    assert sorted(r.pk for r in everything.context["cl"].result_list) == sorted([pending.pk, rejected.pk])
    assert "Approval queue" not in everything.context["title"]
    for query in ({"state__exact": "rejected"}, {"state": "rejected"}):  # the filter's link, and a plain one
        response = client.get(CHANGELIST, query)
        assert [r.pk for r in response.context["cl"].result_list] == [rejected.pk], query
    # Searching the queue for someone keeps to the queue; "All" keeps the search.
    assert [r.pk for r in client.get(CHANGELIST, {"q": "Baker"}).context["cl"].result_list] == []
    found = client.get(CHANGELIST, {"q": "Baker", "state__exact": "all"})
    assert [r.pk for r in found.context["cl"].result_list] == [rejected.pk]


def test_the_buttons_are_there_only_for_those_who_may_approve(pki, alice, approver, auditor):
    request = _request(alice)
    page = _client(approver).get(CHANGELIST).content.decode()
    assert f'formaction="{_approve_url(request)}?_changelist_filters=' not in page  # nothing preserved: a bare queue
    assert f'formaction="{_approve_url(request)}"' in page and f'href="{_reject_url(request)}"' in page
    change = _client(approver).get(reverse("admin:enrollment_certificaterequest_change", args=[request.pk]))
    assert f'action="{_approve_url(request)}"' in change.content.decode()

    auditor_client = _client(auditor)
    for url in (CHANGELIST, reverse("admin:enrollment_certificaterequest_change", args=[request.pk])):
        response = auditor_client.get(url)
        assert response.status_code == 200
        assert (
            _approve_url(request) not in response.content.decode() and "approve-button" not in response.content.decode()
        )
    assert auditor_client.get(_approve_url(request)).status_code == 403
    assert auditor_client.post(_approve_url(request)).status_code == 403
    assert auditor_client.post(_reject_url(request), {"reason": "no"}).status_code == 403
    request.refresh_from_db()
    assert request.state == "pending"


def test_approve_with_the_row_button_issues_and_returns_to_the_queue_as_it_was(pki, alice, approver):
    request = _request(alice)
    client = _client(approver)
    filtered = client.get(CHANGELIST, {"state__exact": "pending", "key_type": "ec-p256"}).content.decode()
    button = f"{_approve_url(request)}?_changelist_filters=state__exact%3Dpending%26key_type%3Dec-p256"
    assert f'formaction="{button}"' in filtered

    confirm = client.get(_approve_url(request))  # what a GET shows: the facts and a POST form, nothing decided
    assert confirm.status_code == 200 and "csrfmiddlewaretoken" in confirm.content.decode()
    request.refresh_from_db()
    assert request.state == "pending"

    csrf_checked = Client(enforce_csrf_checks=True)
    csrf_checked.force_login(approver)
    assert csrf_checked.post(_approve_url(request)).status_code == 403  # a POST from elsewhere
    request.refresh_from_db()
    assert request.state == "pending"

    response = client.post(button)
    request.refresh_from_db()
    assert request.state == "issued" and request.decided_by == approver
    assert response.status_code == 302 and response["Location"] == f"{CHANGELIST}?state__exact=pending&key_type=ec-p256"
    assert _messages(response) == [f"Request #{request.pk} approved; certificate {request.certificate.serial} issued."]
    assert AuditEvent.objects.filter(action="request.approved", actor_name="approver").count() == 1


def test_reject_asks_for_a_reason_on_a_page_of_its_own(pki, alice, approver):
    request = _request(alice)
    client = _client(approver)
    page = client.get(_reject_url(request))
    assert page.status_code == 200 and 'name="reason"' in page.content.decode()

    refused = client.post(_reject_url(request), {"reason": "   "})
    assert refused.status_code == 200 and refused.context["form"].errors["reason"]
    request.refresh_from_db()
    assert request.state == "pending"

    response = client.post(
        _reject_url(request) + "?_changelist_filters=state__exact%3Dpending", {"reason": "Contractor, not eligible"}
    )
    request.refresh_from_db()
    assert (request.state, request.reason, request.decided_by) == ("rejected", "Contractor, not eligible", approver)
    assert response.status_code == 302 and response["Location"] == f"{CHANGELIST}?state__exact=pending"
    assert _messages(response) == [f"Request #{request.pk} rejected."]
    again = client.get(_reject_url(request))
    assert "nothing to decide" in again.content.decode() and 'name="reason"' not in again.content.decode()


# --- Separation of duties: said before, enforced anyway ---------------------------------------


def test_separation_of_duties_is_shown_before_the_attempt(pki, approver, bob):
    own = _request(approver)
    for_bob = _request(bob, submitted_by=approver)
    client = _client(approver)
    page = client.get(CHANGELIST).content.decode()
    assert "You cannot approve this: it is your own request." in page
    assert "You cannot approve this: you submitted it." in page
    assert _approve_url(own) not in page and _approve_url(for_bob) not in page
    change = client.get(reverse("admin:enrollment_certificaterequest_change", args=[own.pk])).content.decode()
    assert "You cannot approve this: it is your own request (separation of duties)." in change
    assert _approve_url(own) not in change
    reject = client.get(_reject_url(for_bob)).content.decode()
    assert "You cannot reject this: you submitted it" in reject and 'name="reason"' not in reject


def test_a_forged_decision_is_still_refused_by_the_service(pki, approver, bob):
    own = _request(approver)
    for_bob = _request(bob, submitted_by=approver)
    client = _client(approver)
    since = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    approved = client.post(_approve_url(own))
    assert approved.status_code == 302
    assert _messages(approved) == [
        f"Request #{own.pk} not approved: You cannot decide request #{own.pk}: it is your own request "
        "(separation of duties)."
    ]
    rejected = client.post(_reject_url(for_bob), {"reason": "forged"}, follow=True)
    assert any(f"Request #{for_bob.pk} not rejected" in m and "you submitted it" in m for m in _messages(rejected))
    for request in (own, for_bob):
        request.refresh_from_db()
        assert request.state == "pending" and request.decided_by is None
    assert not AuditEvent.objects.filter(id__gt=since, action__in=["request.approved", "request.rejected"]).exists()


def test_what_the_admin_shows_and_what_the_service_decides_agree(pki, alice, bob, approver, approver2):
    """The admin's predicate is the service's: for every (request, approver), a conflict iff a refusal."""
    from core.exceptions import SeparationOfDuties

    requests = [_request(alice), _request(bob, submitted_by=approver), _request(approver)]
    for request in requests:
        for user in (approver, approver2):
            conflict = request_duty_conflict(request=request, user=user)
            refused = False
            try:
                certificate_request_reject(request_id=request.pk, approver=user, reason="probe")
            except SeparationOfDuties:
                refused = True
            else:
                CertificateRequest.objects.filter(pk=request.pk).update(
                    state="pending", decided_by=None, decided_at=None, reason=""
                )
            assert bool(conflict) == refused, (request, user, conflict)


# --- Bulk actions: one summary line ------------------------------------------------------------


def test_a_bulk_approval_reports_in_one_summary_line(pki, alice, bob, approver, make_user):
    carol = make_user("carol", given_name="Carol", surname="Cole")
    ok = [_request(alice), _request(bob), _request(carol)]
    own = _request(approver)
    response = _client(approver).post(
        CHANGELIST, {"action": "approve_selected", "_selected_action": [r.pk for r in [*ok, own]]}, follow=True
    )
    messages = list(response.context["messages"])
    assert [str(m) for m in messages] == [
        f"3 requests approved; certificates issued; 1 could not be approved: #{own.pk} "
        "(it is your own request (separation of duties))."
    ]
    assert messages[0].level_tag == "warning"
    assert sorted(CertificateRequest.objects.filter(state="issued").values_list("pk", flat=True)) == [r.pk for r in ok]


def test_a_bulk_rejection_reports_in_one_summary_line(pki, alice, bob, approver):
    ok = [_request(alice), _request(bob)]
    own = _request(approver)
    data = {
        "action": "reject_selected",
        "_selected_action": [r.pk for r in [*ok, own]],
        "confirm": "yes",
        "reason": "Not eligible",
    }
    response = _client(approver).post(CHANGELIST, data, follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        f"2 requests rejected; 1 could not be rejected: #{own.pk} (it is your own request (separation of duties))."
    ]


def test_a_bulk_approval_on_workers_keeps_one_line_and_issues_nothing_here(
    pki, alice, bob, approver, settings, monkeypatch
):
    """With a broker (issuance_in_background) the admin records the decisions; workers issue."""
    from enrollment.services import issuance

    queued = []
    monkeypatch.setattr("enrollment.admin_queue.issuance_in_background", lambda: True)
    monkeypatch.setattr("enrollment.services.requests.issuance_in_background", lambda: True)
    monkeypatch.setattr(
        "enrollment.services.requests.issuance_queue_after_commit", lambda *, request_id: queued.append(request_id)
    )
    monkeypatch.setattr(issuance, "certificate_request_fulfil", lambda **kw: pytest.fail("issued in the admin"))
    requests = [_request(alice), _request(bob)]
    response = _client(approver).post(
        CHANGELIST, {"action": "approve_selected", "_selected_action": [r.pk for r in requests]}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == [
        "2 requests approved; issuing in the background (the queue shows how far)."
    ]
    assert sorted(queued) == sorted(r.pk for r in requests)
    assert set(CertificateRequest.objects.values_list("state", flat=True)) == {"approved"}

    # The queue the approver lands on shows how far the workers are: 2 wait, none issued yet.
    progress = response.context["issuance_progress"]
    assert (progress.waiting, progress.issued_last_hour, progress.failed_last_hour) == (2, 0, 0)
    box = response.content.decode()
    assert '<a href="?state__exact=approved">2 approved requests</a> wait for a worker' in box
    assert '<progress id="issuance-progress-bar" max="2" value="0">' in box

    # A worker issues one, another fails: the box follows; once none waits, it is gone.
    first, second = requests
    CertificateRequest.objects.filter(pk=first.pk).update(state="issued")
    progress = _client(approver).get(CHANGELIST).context["issuance_progress"]
    assert (progress.waiting, progress.issued_last_hour, progress.failed_last_hour) == (1, 1, 0)
    CertificateRequest.objects.filter(pk=second.pk).update(state="failed", reason="worker test")
    queue = _client(approver).get(CHANGELIST)
    assert queue.context["issuance_progress"] is None
    assert 'id="issuance-progress"' not in queue.content.decode()


# --- The admin home ------------------------------------------------------------------------------


def test_the_admin_home_says_how_many_requests_wait_and_links_to_the_queue(
    pki, alice, bob, approver, approver2, auditor
):
    first, _ = _request(alice), _request(bob)
    home = _client(approver).get(reverse("admin:index")).content.decode()
    assert f'<a href="{CHANGELIST}?state__exact=pending">2 requests waiting for approval</a>' in home
    certificate_request_approve(request_id=first.pk, approver=approver2)
    assert "1 request waiting for approval" in _client(auditor).get(reverse("admin:index")).content.decode()
    # The dashboard's link, for those who may open it (auditors, PKI administrators), when it is there.
    try:
        dashboard = reverse("admin:dashboard")
    except NoReverseMatch:
        dashboard = None
    auditor_home = _client(auditor).get(reverse("admin:index")).content.decode()
    assert f'href="{dashboard}"' not in home  # approvers do not see the dashboard
    assert (f'href="{dashboard}"' in auditor_home) == (dashboard is not None)


def test_the_admin_home_shows_no_count_to_those_who_cannot_see_requests(pki, make_user, alice):
    from enrollment.roles import KEY_RECOVERY_AGENTS

    _request(alice)
    agent = make_user("agentuser", groups=[KEY_RECOVERY_AGENTS])
    home = _client(agent).get(reverse("admin:index"))
    assert home.status_code == 200 and "waiting for approval" not in home.content.decode()


# --- Employees: a form of names and mail; requests on their behalf -----------------------------


def test_the_employee_add_form_asks_for_names_and_mail_not_an_account(pki, pki_admin, make_user):
    client = _client(pki_admin)
    add = reverse("admin:enrollment_employee_add")
    form = client.get(add).context["adminform"].form
    assert list(form.fields) == ["given_name", "surname", "mail", "department", "directory_dn", "username"]
    assert not form.fields["username"].required and "user" not in form.fields

    values = {
        "given_name": "Carol",
        "surname": "Cole",
        "mail": "Carol.Cole@example.org",
        "department": "Sales",
        "directory_dn": "",
    }
    response = client.post(add, values)
    assert response.status_code == 302
    carol = Employee.objects.get(mail="carol.cole@example.org")
    assert (carol.user.username, carol.department, carol.user.has_usable_password()) == ("carol.cole", "Sales", False)
    assert AuditEvent.objects.filter(action="employee.created", actor_name="pkiadmin").count() == 1

    # An existing account is never guessed from the mailbox: it is linked only when typed.
    make_user("dave", employee=False)
    values = {**values, "given_name": "Dave", "mail": "dave@example.org"}
    guessed = client.post(add, values)
    assert guessed.status_code == 200 and "type its log-in name" in str(guessed.context["adminform"].form.errors)
    assert not Employee.objects.filter(mail="dave@example.org").exists()
    assert client.post(add, {**values, "username": "dave"}).status_code == 302
    assert Employee.objects.get(mail="dave@example.org").user.username == "dave"


def test_an_approver_requests_a_certificate_on_an_employees_behalf(pki, approver, approver2, bob, auditor):
    url = reverse("admin:enrollment_employee_request_certificate", args=[bob.employee.pk])
    client = _client(approver)
    change = client.get(reverse("admin:enrollment_employee_change", args=[bob.employee.pk])).content.decode()
    assert f'href="{url}"' in change
    page = client.get(url)
    assert page.status_code == 200 and "bob@example.org" in page.content.decode()

    response = client.post(url, {"key_type": "ec-p256", "certificate_type": "sponsor-strict"})
    created = CertificateRequest.objects.get(employee=bob.employee)
    assert (created.submitted_by, created.state, created.key_type) == (approver, "pending", "ec-p256")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:enrollment_certificaterequest_change", args=[created.pk])
    assert AuditEvent.objects.filter(action="request.created", actor_name="approver").count() == 1
    # The submitter cannot approve it; another approver can.
    assert "You cannot approve this: you submitted it" in client.get(response["Location"]).content.decode()
    assert _approve_url(created) in _client(approver2).get(response["Location"]).content.decode()

    again = client.post(url, {"key_type": "ec-p256", "certificate_type": "sponsor-strict"})
    assert again.status_code == 200 and "pending request" in str(again.context["form"].errors)
    assert CertificateRequest.objects.filter(employee=bob.employee).count() == 1

    assert _client(auditor).get(url).status_code == 403
    assert _client(auditor).post(url, {"key_type": "ec-p256", "certificate_type": "sponsor-strict"}).status_code == 403


def test_the_request_page_shows_the_employees_directory_details_and_history(pki, issued, alice, approver2):
    request = _request(alice)
    page = _client(approver2).get(reverse("admin:enrollment_certificaterequest_change", args=[request.pk]))
    text = page.content.decode()
    for expected in ("Alice Archer", "alice@example.org", "directory entry", issued.serial, f"#{issued.request.pk}"):
        assert expected in text, expected
    assert reverse("admin:enrollment_certificate_change", args=[issued.pk]) in text


def test_decisions_need_the_second_factor(pki, alice, approver, enforced):
    request = _request(alice)
    client = unverified_client(approver)
    for response in (
        client.get(_approve_url(request)),
        client.post(_approve_url(request)),
        client.post(_reject_url(request), {"reason": "x"}),
    ):
        assert to_second_factor(response)
    request.refresh_from_db()
    assert request.state == "pending"
