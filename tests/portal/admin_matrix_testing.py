"""What the admin permission matrices share: the roles, one object of every registered model,
the clients of the roles (with a verified second factor), and a fingerprint of the database.

tests/portal/test_admin_permission_matrix.py covers the pages, tests/portal/test_admin_action_matrix.py
the actions. "alice" owns the objects; the role accounts own none and decided nothing.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.test import Client
from second_factor_testing import enrol, verified_client

from enrollment.roles import APPROVERS, AUDITORS, KEY_RECOVERY_AGENTS, PKI_ADMINISTRATORS

# The columns of every table, and who each is (make_user's keyword arguments; None: not logged in).
ROLES = {
    "anonymous": None,
    "employee": {},
    "approver": {"groups": [APPROVERS]},
    "auditor": {"groups": [AUDITORS]},
    "agent": {"groups": [KEY_RECOVERY_AGENTS]},
    "pki admin": {"groups": [PKI_ADMINISTRATORS]},
    "superuser": {"superuser": True},
    "approver+agent": {"groups": [APPROVERS, KEY_RECOVERY_AGENTS]},
}
TRUSTED = [role for role, kwargs in ROLES.items() if kwargs]  # every role that needs a second factor
AGENT_PASSPHRASE = "agent-passphrase-for-the-admin-matrix"

# What a test may change without it counting as a change: the log-in itself, sessions.
_VOLATILE_FIELDS = {"auth.user": {"last_login"}}
# ... and what viewing the audit log moves by design: how far the hash chain is known to verify
# (audit/verification.py), a record of checks made, not of anything the role changed.
_DERIVED_TABLES = {"audit.auditchainstate"}
_FINGERPRINTED_APPS = ("auth", "admin", "axes", "audit", "enrollment", "escrow", "portal", "otp_totp", "otp_static")


def db_fingerprint() -> dict:
    """Every row of the portal's tables (and auth's, admin's log, axes', django-otp's, their m2m tables), as values."""
    from django.apps import apps

    rows = {}
    for model in apps.get_models(include_auto_created=True):
        label = model._meta.label_lower
        if model._meta.app_label not in _FINGERPRINTED_APPS or label in ("auth.permission", *_DERIVED_TABLES):
            continue
        skip = _VOLATILE_FIELDS.get(label, set())
        rows[label] = [{k: v for k, v in row.items() if k not in skip} for row in model.objects.order_by("pk").values()]
    return rows


def changed_tables(before: dict, after: dict) -> list[str]:
    return sorted(label for label in before if before[label] != after.get(label))


def new_events(since_id: int) -> list[tuple[str, str]]:
    """(action, actor's username) of the audit events written after `since_id`."""
    from audit.models import AuditEvent

    return list(AuditEvent.objects.filter(id__gt=since_id).order_by("id").values_list("action", "actor_name"))


def last_event_id() -> int:
    from audit.models import AuditEvent

    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


@contextmanager
def rolled_back():
    """A savepoint undone afterwards: each cell of a test starts from the same world."""
    from django.db import transaction

    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def agent_p12(pki) -> bytes:
    from enrollment.pki.pkcs12 import pkcs12_bundle

    material = pki["material"]
    return pkcs12_bundle(
        key=material.kra_key, certificate=material.kra, chain=[], friendly_name="agent", passphrase=AGENT_PASSPHRASE
    )


def refused(response, role: str) -> bool:
    """Kept out: the admin's log-in page (anonymous, employees), or 403."""
    if role in ("anonymous", "employee"):
        return response.status_code == 302 and response["Location"].startswith("/admin/login/")
    return response.status_code == 403


@pytest.fixture
def world(enforced, pki, issued, alice, bob, make_user, settings):
    """One object of every registered model (alice's where they have an owner), and the role clients."""
    from axes.models import AccessAttempt
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from audit.models import AuditEvent
    from enrollment.bulk import bulk_file_read
    from enrollment.bulk_batches import enrollment_batch_run
    from enrollment.models import DirectoryPublication
    from enrollment.services.employees import offboarding_request_create
    from enrollment.services.identity_changes import identity_change_request_create
    from enrollment.services.requests import certificate_request_create
    from enrollment.services.role_grants import role_grant_request
    from escrow.services.recovery import recovery_request_approve, recovery_request_create
    from portal.services import api_token_create

    # A directory that does not answer: a retry is attempted and its failure recorded.
    settings.PORTAL_LDAP_URI = "ldap://127.0.0.1:9"
    settings.PORTAL_LDAP_USER_BASE_DN = "ou=people,dc=example,dc=org"
    settings.PORTAL_LDAP_TIMEOUT = 1

    asker = make_user("asker", groups=[PKI_ADMINISTRATORS])  # the first of two PKI administrators
    holder = make_user("holder", groups=[AUDITORS])  # a legal hold, approved, waiting for an agent
    deciders = [make_user(name, groups=[APPROVERS]) for name in ("first-approver", "second-approver")]
    leaver, leaver2 = make_user("leaver", groups=[AUDITORS]), make_user("leaver2", groups=[AUDITORS])
    approved = recovery_request_create(requested_by=holder, reason="Legal hold 17", serial=issued.serial)
    for decider in deciders:
        recovery_request_approve(request_id=approved.pk, approver=decider)
    publication, _ = DirectoryPublication.objects.get_or_create(certificate=issued)
    objects = {
        "auth.group": Group.objects.get(name=APPROVERS),
        "auth.user": bob,
        "portal.apitoken": api_token_create(user=alice, name="alice's script").token,
        "axes.accessattempt": AccessAttempt.objects.create(
            username="bob", ip_address="192.0.2.9", user_agent="curl", http_accept="*/*", path_info="/accounts/login/",
            get_data="", post_data="", failures_since_start=5, attempt_time=timezone.now(),
        ),
        "enrollment.certificaterequest": certificate_request_create(
            employee=alice.employee, submitted_by=alice, key_type="ec-p256"
        ),
        "enrollment.certificate": issued,
        "enrollment.certificateauthority": pki["issuing"],
        "enrollment.directorypublication": publication,
        "enrollment.employee": bob.employee,
        "enrollment.offboardingrequest": offboarding_request_create(user=leaver, actor=asker, reason="left"),
        "enrollment.rolegrantrequest": role_grant_request(user=bob, role=AUDITORS, actor=asker, reason="cover"),
        "enrollment.identitychangerequest": identity_change_request_create(
            employee=alice.employee, actor=asker, reason="married", surname="Archer-Smith"
        ),
        "enrollment.enrollmentbatch": enrollment_batch_run(
            actor=asker,
            rows=bulk_file_read(b"mail,given_name,surname\nenrolled@example.org,Enrolled,In-Batch\n"),
            source="people.csv",
        ).batch,
        "escrow.keyrecoveryagent": pki["agent"],
        "escrow.escrowrecord": issued.escrow,
        "escrow.recoveryrequest": recovery_request_create(requested_by=alice, reason="Laptop stolen", serial=issued.serial),
        "audit.auditevent": None,  # set below: the newest event
    }
    objects["audit.auditevent"] = AuditEvent.objects.order_by("-id").first()
    users = {role: (None if kwargs is None else make_user(f"role-{role.replace(' ', '-')}", **kwargs))
             for role, kwargs in ROLES.items()}
    devices = {role: enrol(user) for role, user in users.items() if role in TRUSTED}
    clients = {
        role: Client() if user is None else verified_client(user, devices[role]) if role in devices else _logged_in(user)
        for role, user in users.items()
    }
    return {
        "objects": objects, "users": users, "clients": clients, "pki": pki, "alice": alice, "bob": bob,
        "approved": approved, "leaver2": leaver2, "certificate": issued,
        # An account without an employee record: the only kind whose password an administrator sets.
        "service_account": make_user("service-account", employee=False),
    }


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client
