"""A new employee's account is linked to their directory entry (portal/directory_links.py), so that a
person added by an administrator before their first log-in still logs in with the directory password;
only when the entry confirms the mailbox, only for an account the creation made, never silently wrong."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from slapd_server import DIRECTORY_PASSWORDS, person_dn

from audit.models import AuditEvent
from enrollment.services.employees import employee_create
from portal.ldap_auth import LDAP_BACKEND
from portal.models import DirectoryAccount

pytestmark = pytest.mark.django_db




def _create(pki_admin, capture, **fields):
    with capture(execute=True):
        return employee_create(actor=pki_admin, given_name="Carol", surname="Clark", **fields)


def test_an_employee_created_with_their_entry_logs_in_with_the_directory_password(
    ldap_login, pki_admin, django_capture_on_commit_callbacks
):
    carol = _create(
        pki_admin, django_capture_on_commit_callbacks,
        username="carol", mail="carol@example.org", directory_dn=person_dn("carol"),
    )

    account = DirectoryAccount.objects.get(user=carol.user)
    assert account.entry_dn == person_dn("carol") and account.origin == DirectoryAccount.Origin.LINKED
    linked = AuditEvent.objects.get(action="auth.directory_linked")
    assert linked.details["linked_by"] == "employee_create by pkiadmin"
    user = authenticate(None, username="carol", password=DIRECTORY_PASSWORDS["carol"])
    assert user is not None and user.pk == carol.user.pk and user.backend == LDAP_BACKEND


def test_an_entry_that_does_not_carry_the_mailbox_is_not_linked(
    ldap_login, pki_admin, django_capture_on_commit_callbacks
):
    # The DN of bob's entry typed for another mailbox: whose entry it is, the DN alone does not say.
    other = _create(
        pki_admin, django_capture_on_commit_callbacks,
        username="carol", mail="carol@example.org", directory_dn=person_dn("bob"),
    )
    assert not DirectoryAccount.objects.filter(user=other.user).exists()
    assert authenticate(None, username="bob", password=DIRECTORY_PASSWORDS["bob"]).pk != other.user.pk


def test_an_existing_account_is_not_linked_and_nothing_is_linked_without_a_directory(
    ldap_login, pki_admin, make_user, django_capture_on_commit_callbacks, settings
):
    existing = make_user("carol", employee=False)
    carol = _create(
        pki_admin, django_capture_on_commit_callbacks,
        username="carol", mail="carol@example.org", directory_dn=person_dn("carol"),
    )
    assert carol.user.pk == existing.pk
    assert not DirectoryAccount.objects.filter(user=existing).exists()  # an administrator's decision: link_directory_account

    settings.PORTAL_LDAP_URI = ""
    alice = _create(
        pki_admin, django_capture_on_commit_callbacks,
        username="alice2", mail="alice@example.org", directory_dn=person_dn("alice"),
    )
    assert not DirectoryAccount.objects.filter(user=alice.user).exists()
