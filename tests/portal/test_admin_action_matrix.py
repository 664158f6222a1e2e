"""Who may run which admin action: every action of every registered model × every role.

The actions are read from the admin site at run time (Django's delete_selected included): one
without a row in ACTIONS fails the test. Each cell POSTs the action on the changelist as a real
browser does: first without confirmation (an action with a confirmation page shows it, and
nothing happens yet), then confirmed with its form.

  ok        it runs: the effect is in the database and the acting account's audit events are written
  no        not for this role: the admin's log-in page (anonymous, employees), 403 (no access to the
            list), or not offered at all; nothing changes, no audit event
  declined  offered, and the service refuses this account (separation of duties, a rule of the role):
            an error message, nothing changes, no audit event

Each cell runs in a savepoint that is rolled back: every role meets the same objects (world).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pytest
from admin_matrix_testing import (  # noqa: F401 - fixtures
    ROLES,
    changed_tables,
    db_fingerprint,
    last_event_id,
    new_events,
    refused,
    rolled_back,
    world,
)
from django.contrib import admin
from django.urls import reverse
from second_factor_testing import enforced  # noqa: F401 - fixture

# fmt: off
ACTIONS = {
    # (model, action)                                          anonymous employee approver  auditor agent pki admin   superuser   approver+agent
    ("axes.accessattempt", "unlock_accounts"):                 ("no",    "no",    "no",      "no",   "no", "ok",       "ok",       "no"),
    ("axes.accessattempt", "unlock_sources"):                  ("no",    "no",    "no",      "no",   "no", "ok",       "ok",       "no"),
    ("audit.auditevent", "export_csv"):                        ("no",    "no",    "no",      "ok",   "no", "no",       "ok",       "no"),
    ("enrollment.certificaterequest", "approve_selected"):     ("no",    "no",    "ok",      "no",   "no", "ok",       "ok",       "ok"),
    ("enrollment.certificaterequest", "reject_selected"):      ("no",    "no",    "ok",      "no",   "no", "ok",       "ok",       "ok"),
    ("enrollment.certificate", "revoke_selected"):             ("no",    "no",    "ok",      "no",   "no", "ok",       "ok",       "ok"),
    ("enrollment.directorypublication", "retry_selected"):     ("no",    "no",    "no",      "no",   "no", "ok",       "ok",       "no"),
    ("enrollment.employee", "offboard_selected"):              ("no",    "no",    "ok",      "no",   "no", "ok",       "ok",       "ok"),
    # Not a change yet: the identity change request's add page, for this employee (a PKI administrator asks).
    ("enrollment.employee", "request_identity_change"):        ("no",    "no",    "no",      "no",   "no", "ok",       "ok",       "no"),
    ("enrollment.employee", "request_offboarding_selected"):   ("no",    "no",    "no",      "no",   "no", "ok",       "ok",       "no"),
    # Not a request yet: the page that submits one for this employee (whoever may approve requests).
    ("enrollment.employee", "request_certificate_on_behalf"):  ("no",    "no",    "ok",      "no",   "no", "ok",       "ok",       "ok"),
    ("enrollment.rolegrantrequest", "grant_selected"):         ("no",    "no",    "no",      "no",   "no", "ok",       "ok",       "no"),
    ("enrollment.identitychangerequest", "confirm_selected"):  ("no",    "no",    "ok",      "no",   "no", "ok",       "ok",       "ok"),
    ("enrollment.identitychangerequest", "reject_selected"):   ("no",    "no",    "ok",      "no",   "no", "ok",       "ok",       "ok"),
    # Only the PKI administrator who asked withdraws (the role accounts asked for nothing).
    ("enrollment.identitychangerequest", "withdraw_selected"): ("no",    "no",    "no",      "no",   "no", "declined", "declined", "no"),
    ("escrow.keyrecoveryagent", "deactivate_selected"):        ("no",    "no",    "no",      "no",   "no", "ok",       "ok",       "no"),
    # A superuser outside Approvers does not count as an approver (SECURITY.md).
    ("escrow.recoveryrequest", "approve_selected"):            ("no",    "no",    "ok",      "no",   "no", "no",       "declined", "ok"),
    ("escrow.recoveryrequest", "reject_selected"):             ("no",    "no",    "ok",      "no",   "no", "no",       "declined", "ok"),
    ("escrow.recoveryrequest", "withdraw_selected"):           ("no",    "no",    "ok",      "no",   "no", "no",       "declined", "ok"),
}
# fmt: on
NOBODY = ("no",) * len(ROLES)
# Nothing registered is deleted in the admin, by anyone (records are revoked, offboarded, withdrawn, kept).
for _model in admin.site._registry:
    ACTIONS.setdefault((_model._meta.label_lower, "delete_selected"), NOBODY)


def _objects(label):
    return lambda w: w["objects"][label].pk


def _get(label, **lookup):
    from django.apps import apps

    return apps.get_model(label).objects.filter(**lookup)


@dataclass(frozen=True)
class Action:
    target: Callable  # world → the pk the action is run on
    effect: Callable  # world → True once it ran
    events: list = field(default_factory=list)  # the audit events the acting account writes
    confirm: dict | None = None  # the confirmation form's data; None: no confirmation page
    setup: Callable = lambda w: None  # world → None: what the cell needs besides the world (rolled back)
    answer: Callable = lambda response: response.status_code in (200, 302)  # what "ok" answers


REQUEST, RECOVERY, IDENTITY = "enrollment.certificaterequest", "escrow.recoveryrequest", "enrollment.identitychangerequest"


def _second_agent(world):
    """The only active agent cannot be deactivated (no escrow, no issuance): a second one, as a row only."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding

    from escrow.models import KeyRecoveryAgent

    certificate = world["pki"]["material"].root  # never used to encrypt: the cell issues nothing
    world["objects"]["escrow.keyrecoveryagent"] = KeyRecoveryAgent.objects.create(
        name="Second agent", certificate_der=certificate.public_bytes(Encoding.DER),
        fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(),
    )

SPECS = {
    "unlock_accounts": Action(_objects("axes.accessattempt"), lambda w: not _get("axes.accessattempt", username="bob"),
                              ["auth.unlocked"]),
    "unlock_sources": Action(_objects("axes.accessattempt"),
                             lambda w: not _get("axes.accessattempt", ip_address="192.0.2.9"), ["auth.unlocked"]),
    "export_csv": Action(_objects("audit.auditevent"), lambda w: True, ["audit.exported"]),
    ("enrollment.certificaterequest", "approve_selected"): Action(
        _objects(REQUEST), lambda w: _get(REQUEST, pk=w["objects"][REQUEST].pk, state="issued"), ["request.approved"]),
    ("enrollment.certificaterequest", "reject_selected"): Action(
        _objects(REQUEST), lambda w: _get(REQUEST, pk=w["objects"][REQUEST].pk, state="rejected"),
        ["request.rejected"], confirm={"reason": "duplicate"}),
    "revoke_selected": Action(
        _objects("enrollment.certificate"), lambda w: _get("enrollment.certificate", status="revoked"),
        ["certificate.revoked"], confirm={"reason": "superseded", "comment": ""}),
    "retry_selected": Action(
        _objects("enrollment.directorypublication"), lambda w: _get("enrollment.directorypublication", attempts__gt=0)),
    "offboard_selected": Action(
        _objects("enrollment.employee"), lambda w: _get("auth.user", username="bob", is_active=False),
        ["employee.offboarded"], confirm={}),
    "request_identity_change": Action(
        _objects("enrollment.employee"), lambda w: True,
        answer=lambda r: r.status_code == 302 and "/identitychangerequest/add/?employee_ref=bob" in r["Location"]),
    "request_certificate_on_behalf": Action(
        _objects("enrollment.employee"), lambda w: True,
        answer=lambda r: r.status_code == 302 and r["Location"].endswith("/request-certificate/")),
    "request_offboarding_selected": Action(
        lambda w: w["leaver2"].employee.pk, lambda w: _get("enrollment.offboardingrequest", user=w["leaver2"]),
        ["employee.offboarding_requested"], confirm={"reason": "left the company"}),
    "grant_selected": Action(
        _objects("enrollment.rolegrantrequest"), lambda w: _get("auth.user", username="bob", groups__name="Auditors"),
        ["auth.role_granted"]),
    "deactivate_selected": Action(
        _objects("escrow.keyrecoveryagent"), lambda w: _get("escrow.keyrecoveryagent", is_active=False),
        ["kra.deactivated"], confirm={}, setup=_second_agent),
    "confirm_selected": Action(
        _objects(IDENTITY), lambda w: _get("enrollment.employee", user=w["alice"], surname="Archer-Smith"),
        ["employee.identity_change_confirmed"], confirm={"comment": ""}),
    (IDENTITY, "reject_selected"): Action(
        _objects(IDENTITY), lambda w: _get(IDENTITY, pk=w["objects"][IDENTITY].pk, state="rejected"),
        ["employee.identity_change_rejected"], confirm={"comment": "not documented"}),
    (IDENTITY, "withdraw_selected"): Action(
        _objects(IDENTITY), lambda w: _get(IDENTITY, pk=w["objects"][IDENTITY].pk, state="withdrawn"),
        ["employee.identity_change_withdrawn"]),
    ("escrow.recoveryrequest", "approve_selected"): Action(
        _objects(RECOVERY), lambda w: _get("escrow.recoverydecision", request=w["objects"][RECOVERY], decision="approve"),
        ["recovery.approved"], confirm={"comment": "checked with the owner"}),
    ("escrow.recoveryrequest", "reject_selected"): Action(
        _objects(RECOVERY), lambda w: _get(RECOVERY, pk=w["objects"][RECOVERY].pk, status="rejected"),
        ["recovery.rejected"], confirm={"comment": "not plausible"}),
    "withdraw_selected": Action(
        _objects(RECOVERY), lambda w: _get(RECOVERY, pk=w["objects"][RECOVERY].pk, status="withdrawn"),
        ["recovery.withdrawn"], confirm={"reason": "duplicate"}),
    # Never offered (NOBODY): what it would do.
    "delete_selected": None,
}


def _spec(label, name) -> Action:
    spec = SPECS.get((label, name), SPECS.get(name))
    return spec or Action(_objects(label), lambda w: False, confirm={"post": "yes"})


def test_every_action_has_a_declared_expectation():
    registered = {
        (model._meta.label_lower, name)
        for model, model_admin in admin.site._registry.items()
        for _, name, _ in model_admin._get_base_actions()
    }
    assert registered == set(ACTIONS), "declare every admin action (and only those) in ACTIONS"
    assert all(name in SPECS or (label, name) in SPECS for label, name in ACTIONS)


def _offered(world, role, label, name) -> bool:
    """Whether the changelist offers the action to `role` (as its action menu lists them)."""
    from django.apps import apps
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = world["users"][role] or AnonymousUser()
    return name in admin.site._registry[apps.get_model(label)].get_actions(request)


def _cell(world, role, label, name, expected) -> str | None:
    """What is wrong with running the action `name` on `label` as `role` (None: as declared)."""
    spec, client = _spec(label, name), world["clients"][role]
    spec.setup(world)
    changelist = reverse("admin:{}_{}_changelist".format(*label.split(".")))
    data = {"action": name, "_selected_action": [spec.target(world)], "index": 0}
    before, since = db_fingerprint(), last_event_id()
    offered = _offered(world, role, label, name)
    if expected == "no" and offered:
        return "offered"
    if expected != "no" and not offered:
        return "not offered"
    if spec.confirm is not None:
        page = client.post(changelist, data)
        if expected != "no" and (page.status_code != 200 or "admin/action_confirmation.html" not in
                                 [t.name for t in page.templates]):
            return f"no confirmation page: {page.status_code}"
        if changed_tables(before, db_fingerprint()):
            return f"changed before confirmation: {changed_tables(before, db_fingerprint())}"
        data |= {"confirm": "yes", **spec.confirm}
    response = client.post(changelist, data)
    if response.streaming if expected == "ok" else False:
        b"".join(response.streaming_content)
    mine = [action for action, actor in new_events(since) if role != "anonymous"
            and actor == world["users"][role].get_username()]
    if expected == "ok":
        if not spec.answer(response) or not spec.effect(world):
            return f"no effect: {response.status_code} {_messages(response)}"
        if any(event not in mine for event in spec.events):
            return f"audit events {mine}, expected {spec.events}"
        return None
    changed = changed_tables(before, db_fingerprint())
    if changed or new_events(since):
        return f"changed {changed}, events {new_events(since)}"
    # Not offered (checked above) to a role that may see the list: the list again, or "No action selected".
    if expected == "no" and not (refused(response, role) or response.status_code == 200 or (
            response.status_code == 302 and response["Location"] == changelist)):
        return f"not refused: {response.status_code}"
    if expected == "declined" and not any("not" in message for message in _messages(response)):
        return f"no error message: {_messages(response)}"
    return None


def _messages(response) -> list[str]:
    from django.contrib.messages import get_messages

    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.mark.parametrize("label", sorted({label for label, _ in ACTIONS}))
def test_admin_actions_as_each_role(world, label):
    wrong = []
    for name in sorted(name for model, name in ACTIONS if model == label):
        for role, expected in zip(ROLES, ACTIONS[(label, name)], strict=True):
            with rolled_back():
                problem = _cell(world, role, label, name, expected)
            if problem:
                wrong.append(f"{name} as {role} (expected {expected}): {problem}")
    assert not wrong, f"{label}:\n" + "\n".join(wrong)


def test_a_pki_administrator_cannot_grant_a_role_they_asked_for(world):
    """Dual control: the second person must be another PKI administrator (or a superuser)."""
    client, user = world["clients"]["pki admin"], world["users"]["pki admin"]
    since = last_event_id()
    add = client.post(reverse("admin:enrollment_rolegrantrequest_add"),
                      {"username": "alice", "role": "PKI administrators", "reason": "help"})
    assert add.status_code == 302
    own = _get("enrollment.rolegrantrequest", user=world["alice"], requested_by=user).get()
    before = db_fingerprint()
    changelist = reverse("admin:enrollment_rolegrantrequest_changelist")
    response = client.post(changelist, {"action": "grant_selected", "_selected_action": [own.pk]}, follow=True)
    assert any("not granted" in message for message in _messages(response)), _messages(response)
    assert changed_tables(before, db_fingerprint()) == []
    assert not world["alice"].groups.filter(name="PKI administrators").exists()
    assert [action for action, _ in new_events(since)] == ["auth.role_grant_requested"]
