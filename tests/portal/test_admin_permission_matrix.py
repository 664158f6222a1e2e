"""Who may open which admin page: every registered model × every admin URL × every role.

The models and their URLs are read from the admin site at run time: a model registered without a
row in RIGHTS, or a custom admin URL without a row in CUSTOM_PAGES, fails the test. A right lets
the role GET the pages it covers (200) and POST to them (the write happens, see WRITES); without
it the role is refused (anonymous and employees: the admin's log-in page; trusted roles: 403),
both for GET and POST, and the database does not change (no row, no audit event, no admin log).
Every trusted role is logged in with a verified second factor; without one it reaches no admin
page at all (test_trusted_roles_without_a_second_factor_reach_no_admin_page).
The actions are in test_admin_action_matrix.py.
"""

from __future__ import annotations

from contextlib import nullcontext

import pytest
from admin_matrix_testing import (  # noqa: F401 - fixtures
    AGENT_PASSPHRASE,
    ROLES,
    TRUSTED,
    agent_p12,
    changed_tables,
    db_fingerprint,
    last_event_id,
    new_events,
    refused,
    rolled_back,
    world,
)
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from second_factor_testing import enforced, to_second_factor, unverified_client  # noqa: F401 - fixtures

# v: view (changelist, change page read-only, history)  a: add  c: change  d: delete
# fmt: off
RIGHTS = {
    # model                            anonymous employee approver auditor agent  pki admin superuser approver+agent
    "auth.group":                      ("",      "",      "",      "",     "",    "",       "v",      ""),
    "auth.user":                       ("",      "",      "",      "",     "",    "",       "vac",    ""),
    "portal.apitoken":                 ("",      "",      "",      "",     "",    "",       "v",      ""),
    "axes.accessattempt":              ("",      "",      "",      "",     "",    "v",      "v",      ""),
    "audit.auditevent":                ("",      "",      "",      "v",    "",    "",       "v",      ""),
    "enrollment.certificaterequest":   ("",      "",      "v",     "v",    "",    "v",      "v",      "v"),
    "enrollment.certificate":          ("",      "",      "v",     "v",    "",    "v",      "v",      "v"),
    "enrollment.certificateauthority": ("",      "",      "",      "v",    "",    "v",      "v",      ""),
    "enrollment.directorypublication": ("",      "",      "",      "v",    "",    "v",      "v",      ""),
    "enrollment.employee":             ("",      "",      "v",     "v",    "",    "vac",    "vac",    "v"),
    "enrollment.offboardingrequest":   ("",      "",      "",      "",     "",    "v",      "v",      ""),
    "enrollment.rolegrantrequest":     ("",      "",      "",      "",     "",    "va",     "va",     ""),
    "enrollment.identitychangerequest": ("",     "",      "v",     "",     "",    "va",     "va",     "v"),
    "enrollment.enrollmentbatch":      ("",      "",      "v",     "v",    "",    "v",      "v",      "v"),
    "escrow.keyrecoveryagent":         ("",      "",      "",      "v",    "",    "vc",     "vc",     ""),
    "escrow.escrowrecord":             ("",      "",      "",      "v",    "",    "v",      "v",      ""),
    "escrow.recoveryrequest":          ("",      "",      "v",     "va",   "v",   "va",     "va",     "v"),
}
# Custom admin URLs (by URL name): the path below the model's changelist, and who may open it (y).
CUSTOM_PAGES = {
    "audit_auditevent_export":         ("export.csv",            "",  "",  "",  "y", "",  "",  "y", ""),
    "escrow_recoveryrequest_complete": ("{approved}/complete/",  "",  "",  "",  "",  "y", "",  "y", "y"),
    # The recovery request form's searchable selects: whoever may request a recovery (add).
    "escrow_recoveryrequest_picker":   ("pick/certificate/",     "",  "",  "",  "y", "",  "y", "y", ""),
    # The approval queue's decision pages (GET: what would happen; POST: the service decides) and the
    # request on an employee's behalf: whoever may approve certificate requests (the service's rule).
    "enrollment_certificaterequest_approve": ("{pk}/approve/",   "",  "",  "y", "",  "",  "y", "y", "y"),
    "enrollment_certificaterequest_reject": ("{pk}/reject/",     "",  "",  "y", "",  "",  "y", "y", "y"),
    "enrollment_employee_request_certificate": ("{pk}/request-certificate/", "", "", "y", "", "", "y", "y", "y"),
    # Starting a bulk enrollment from an uploaded CSV: PKI administrators.
    "enrollment_enrollmentbatch_start": ("start/",               "",  "",  "",  "",  "",  "y", "y", ""),
    # An employee's password nobody sets (tests/portal/test_account_admin.py); a service account's, the superuser.
    "auth_user_password_change":       ("{service}/password/",   "",  "",  "",  "",  "",  "",  "y", ""),
}
# fmt: on
KINDS = {"changelist": "v", "add": "a", "change": "v", "history": "v", "delete": "d"}  # GET: the right it needs
WRITE_KINDS = {"add": "a", "change": "c", "delete": "d"}  # POST: the right it needs


def _may(rights: str, role: str, right: str) -> bool:
    return right in rights[list(ROLES).index(role)]


def _registry():
    return {model._meta.label_lower: model_admin for model, model_admin in admin.site._registry.items()}


def _url(label: str, kind: str, world) -> str:
    app, model = label.split(".")
    pk = world["objects"][label].pk
    return reverse(f"admin:{app}_{model}_{kind}", args=[pk] if kind in ("change", "history", "delete") else [])


def _custom_pages(label: str, model_admin) -> list[str]:
    standard = {f"{label.replace('.', '_')}_{kind}" for kind in KINDS}
    return [p.name for p in model_admin.get_urls() if p.name is not None and p.name not in standard]


def _custom_url(label: str, name: str, world) -> str:
    app, model = label.split(".")
    template = CUSTOM_PAGES[name][0]
    suffix = template.format(
        pk=world["objects"][label].pk, approved=world["approved"].pk, service=world["service_account"].pk
    )
    return reverse(f"admin:{app}_{model}_changelist") + suffix


def test_every_registered_model_and_custom_admin_url_has_a_declared_expectation():
    registry = _registry()
    assert sorted(registry) == sorted(RIGHTS), "declare the rights of each registered model in RIGHTS (and nothing else)"
    custom = sorted(name for label, model_admin in registry.items() for name in _custom_pages(label, model_admin))
    assert custom == sorted(CUSTOM_PAGES), "declare every custom admin URL in CUSTOM_PAGES"
    for label in registry:
        assert label in _objects_of_world(), f"the world fixture makes no {label}"


def _objects_of_world():
    import inspect

    import admin_matrix_testing

    return [label for label in RIGHTS if f'"{label}"' in inspect.getsource(admin_matrix_testing.world)]


def _pages(world):
    """(url, who may open it (per role), the trusted roles' refusal) of every admin page."""
    pages = []
    registry = _registry()
    for label, model_admin in registry.items():
        for kind, right in KINDS.items():
            pages.append((_url(label, kind, world), {role: _may(RIGHTS[label], role, right) for role in ROLES}, 403))
        for name in _custom_pages(label, model_admin):
            allowed = {role: _may(CUSTOM_PAGES[name][1:], role, "y") for role in ROLES}
            pages.append((_custom_url(label, name, world), allowed, 403))
    # The index and each app's index: for whoever may view one of the app's models (else 404).
    viewers = lambda labels: {role: any(_may(RIGHTS[lb], role, "v") for lb in labels) for role in ROLES}  # noqa: E731
    staff = {role: role in TRUSTED for role in ROLES}
    pages.append((reverse("admin:index"), staff, 403))
    pages.append((reverse("admin:password_change"), staff, 403))
    for app in sorted({label.split(".")[0] for label in registry}):
        pages.append((reverse("admin:app_list", args=[app]), viewers([lb for lb in RIGHTS if lb.startswith(app + ".")]), 404))
    return pages


@pytest.mark.parametrize("role", list(ROLES))
def test_admin_pages_as_each_role(world, role):
    client = world["clients"][role]
    wrong = []
    before, since = db_fingerprint(), last_event_id()
    for url, allowed, refusal in _pages(world):
        with rolled_back() if url.endswith("export.csv") else nullcontext():  # the export writes its audit event
            response = client.get(url)
            if allowed[role]:
                ok = response.status_code == 200
                if ok and url.endswith("export.csv"):
                    b"".join(response.streaming_content)
                    ok = [action for action, _ in new_events(since)] == ["audit.exported"]
            elif refusal == 404 and role in TRUSTED:
                ok = response.status_code == 404  # the admin does not say which apps exist
            else:
                ok = refused(response, role)
        if not ok:
            wrong.append(f"GET {url}: {response.status_code} {response.get('Location', '')} (allowed: {allowed[role]})")
    assert changed_tables(before, db_fingerprint()) == [] and new_events(since) == []
    assert not wrong, f"{role}:\n" + "\n".join(wrong)


def test_admin_writes_are_refused_without_the_right(world):
    """POST to every add, change and delete page (and the custom ones) a role may not use: refused, nothing changes."""
    wrong = []
    before, since = db_fingerprint(), last_event_id()
    for role, label, model_admin in [(role, *item) for role in ROLES for item in _registry().items()]:
        client = world["clients"][role]
        for kind, right in WRITE_KINDS.items():
            if not _may(RIGHTS[label], role, right):
                url = _url(label, kind, world)
                response = client.post(url, {**WRITES.get((label, kind), (dict, None))[0](world), "post": "yes"})
                if not refused(response, role):
                    wrong.append(f"{role}: POST {url}: {response.status_code} {response.get('Location', '')}")
        for name in _custom_pages(label, model_admin):
            if not _may(CUSTOM_PAGES[name][1:], role, "y"):
                url = _custom_url(label, name, world)
                response = client.post(url, {"password1": "x" * 16, "password2": "x" * 16})
                if not refused(response, role):
                    wrong.append(f"{role}: POST {url}: {response.status_code} {response.get('Location', '')}")
    assert not wrong, "\n".join(wrong)
    assert changed_tables(before, db_fingerprint()) == [] and new_events(since) == []


# --- The writes a right allows: what each POST sends, what it does, the audit events it writes ----------
def _employee(mail="carol@example.org", **values):
    return {"mail": mail, "given_name": "Carol", "surname": "Cole", "department": "", "directory_dn": "", **values}


def _close_identity_change(world):
    from enrollment.services.identity_changes import identity_change_request_reject

    pending = world["objects"]["enrollment.identitychangerequest"]
    identity_change_request_reject(request_id=pending.pk, actor=world["users"]["approver"], comment="make room")


def _get(model_label, **lookup):
    from django.apps import apps

    return apps.get_model(model_label).objects.filter(**lookup)


WRITES = {
    # (model, kind): (POST data, effect seen in the database, audit events written (None: not checked)[, setup])
    ("auth.user", "add"): (
        lambda w: {"username": "dave", "password1": "a long new password", "password2": "a long new password",
                   "usable_password": "true"},
        lambda w: _get("auth.user", username="dave").exists(), None,
    ),
    ("auth.user", "change"): (
        lambda w: {"username": "bob", "first_name": "Robert", "last_name": "", "email": "bob@example.org",
                   "is_active": "on", "date_joined_0": "2026-01-05", "date_joined_1": "09:00:00"},
        lambda w: _get("auth.user", username="bob", first_name="Robert").exists(), None,
    ),
    ("enrollment.employee", "add"): (
        lambda w: {"username": "carol", **_employee()},
        lambda w: _get("enrollment.employee", mail="carol@example.org", user__username="carol").exists(),
        ["employee.created"],
    ),
    ("enrollment.employee", "change"): (
        lambda w: _employee(mail="bob@example.org", given_name="Bob", surname="Example", department="Sales"),
        lambda w: _get("enrollment.employee", mail="bob@example.org", department="Sales").exists(),
        ["employee.changed"],
    ),
    ("enrollment.rolegrantrequest", "add"): (
        lambda w: {"username": "alice", "role": "Approvers", "reason": "new approver"},
        lambda w: _get("enrollment.rolegrantrequest", user__username="alice", role="Approvers").exists(),
        ["auth.role_grant_requested"],
    ),
    ("enrollment.identitychangerequest", "add"): (  # alice's open request (the world's) is rejected first
        lambda w: {"employee_ref": "alice", "given_name": "Alicia", "reason": "spelling"},
        lambda w: _get("enrollment.identitychangerequest", employee__user__username="alice", state="pending").exists(),
        ["employee.identity_change_requested"], _close_identity_change,
    ),
    ("escrow.recoveryrequest", "add"): (
        # All of alice's keys (her own request for her certificate is open already).
        lambda w: {"certificate": "", "employee": w["alice"].employee.pk, "reason": "Mailbox audit", "purpose": "", "recipient": ""},
        lambda w: _get("escrow.recoveryrequest", reason="Mailbox audit").exists(), ["recovery.requested"],
    ),
    # Every field is read-only (deactivation is an action): saving changes nothing.
    ("escrow.keyrecoveryagent", "change"): (dict, lambda w: _get("escrow.keyrecoveryagent", is_active=True).exists(), []),
}


def _form_errors(response):
    """The errors of the page's form, if it shows one again."""
    context = response.context if response.status_code == 200 and response.context is not None else {}
    form = context["adminform"].form if "adminform" in context else context["form"] if "form" in context else None
    return form.errors if form is not None else ""


def test_every_write_a_right_allows_is_declared():
    allowed = {(label, kind) for label, rights in RIGHTS.items() for kind, r in WRITE_KINDS.items() if r in "".join(rights)}
    assert allowed == set(WRITES)


@pytest.mark.parametrize("label, kind", sorted(WRITES))
def test_admin_writes_with_the_right(world, label, kind):
    data, effect, events, *setup = WRITES[(label, kind)]
    wrong = []
    for role in ROLES:
        if not _may(RIGHTS[label], role, WRITE_KINDS[kind]):
            continue
        with rolled_back():
            for prepare in setup:
                prepare(world)
            since = last_event_id()
            response = world["clients"][role].post(_url(label, kind, world), data(world))
            written = [action for action, actor in new_events(since) if actor == world["users"][role].get_username()]
            errors = _form_errors(response)
            if response.status_code != 302 or not effect(world) or (events is not None and written != events):
                wrong.append(f"{role}: {response.status_code} {errors} events {written}")
    assert not wrong, f"POST {label} {kind}:\n" + "\n".join(wrong)


def test_agents_complete_a_recovery_on_its_custom_page(world):
    """The one custom page that writes: an agent (also one who approves others' recoveries) completes it."""
    from escrow.models import RecoveryRequest

    url = _custom_url("escrow.recoveryrequest", "escrow_recoveryrequest_complete", world)
    wrong = []
    for role in ROLES:
        if not _may(CUSTOM_PAGES["escrow_recoveryrequest_complete"][1:], role, "y"):
            continue  # refused: test_admin_writes_are_refused_without_the_right
        with rolled_back():
            since = last_event_id()
            upload = SimpleUploadedFile("agent.p12", agent_p12(world["pki"]), content_type="application/x-pkcs12")
            response = world["clients"][role].post(url, {"agent_pkcs12": upload, "passphrase": AGENT_PASSPHRASE})
            status = RecoveryRequest.objects.get(pk=world["approved"].pk).status
            if response.status_code != 302 or status != "completed" or "recovery.completed" not in dict(new_events(since)):
                wrong.append(f"{role}: {response.status_code} {status} {new_events(since)}")
    assert not wrong, "\n".join(wrong)


def test_trusted_roles_without_a_second_factor_reach_no_admin_page(world):
    """Each trusted role, with the password only: every page and every action sends it to the second factor."""
    clients = {role: unverified_client(world["users"][role]) for role in TRUSTED}  # logging in is an event
    before, since = db_fingerprint(), last_event_id()
    wrong = []
    for role, client in clients.items():
        wrong += [f"{role}: GET {url}: {r.status_code}" for url, _, _ in _pages(world)
                  if not to_second_factor(r := client.get(url))]
        wrong += _unverified_actions(client, role, world)
    assert not wrong, "\n".join(wrong)
    assert changed_tables(before, db_fingerprint()) == [] and new_events(since) == []


def _unverified_actions(client, role, world) -> list[str]:
    wrong = []
    for label, model_admin in _registry().items():
        changelist = _url(label, "changelist", world)
        for _, name, _ in model_admin._get_base_actions():
            response = client.post(changelist, {"action": name, "_selected_action": [world["objects"][label].pk],
                                                "confirm": "yes", "reason": "x", "comment": "x"})
            if not to_second_factor(response):
                wrong.append(f"{role}: POST {changelist} {name}: {response.status_code}")
    return wrong
