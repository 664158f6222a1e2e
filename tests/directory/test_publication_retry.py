"""publications_retry: the one "retry now" the admin action and the API both call."""

from __future__ import annotations

import pytest
from portal_testing import PASSWORD
from slapd_server import person_dn

from audit.models import AuditEvent
from core.exceptions import ConfigurationError, NotAllowed, NotFound
from enrollment.directory.drain import DirectoryNotConfigured, publications_retry
from enrollment.models import DirectoryPublication

CHANGELIST = "/admin/enrollment/directorypublication/"
BINARY = "userCertificate;binary"


@pytest.fixture
def pki_admin(make_user):
    from enrollment.roles import PKI_ADMINISTRATORS

    return make_user("pkiadmin", groups=[PKI_ADMINISTRATORS])


def test_one_connection_for_the_batch_and_the_rest_left_when_the_directory_is_down(
    ldap_settings, directory, issue_certificate, alice, bob, pki_admin, client
):
    certificates = [issue_certificate(alice), issue_certificate(bob)]
    rows = [DirectoryPublication.objects.get(certificate=certificate) for certificate in certificates]
    assert [row.state for row in rows] == ["published", "published"]
    directory.reset_people()  # the values went missing: put them back

    outcome = publications_retry(publication_ids=[rows[1].pk, rows[0].pk, rows[0].pk], actor=pki_admin)

    assert [result.publication.pk for result in outcome.results] == [rows[0].pk, rows[1].pk]
    assert all(result.ok and result.operation == "publish" for result in outcome.results)
    assert outcome.not_attempted == []
    assert directory.values(person_dn("alice"), BINARY) == [bytes(certificates[0].der)]
    assert AuditEvent.objects.filter(action="directory.published", actor_name="pkiadmin").count() == 2

    directory.stop()
    assert client.login(username="pkiadmin", password=PASSWORD)
    response = client.post(
        CHANGELIST, {"action": "retry_selected", "_selected_action": [row.pk for row in rows]}, follow=True
    )

    messages = [str(m) for m in response.context["messages"]]
    assert len(messages) == 2, messages
    assert messages[0].startswith(f"Certificate {certificates[0].serial}: publish failed:") and "cannot connect" in messages[0]
    assert messages[1] == "1 more not attempted: the directory cannot be used."
    attempts = {row.pk: row.attempts for row in DirectoryPublication.objects.all()}
    assert attempts == {rows[0].pk: 3, rows[1].pk: 2}  # the second was not tried


def test_refusals_come_before_any_attempt(ldap_settings, directory, issue_certificate, alice, bob, pki_admin, settings):
    row = DirectoryPublication.objects.get(certificate=issue_certificate(alice))

    with pytest.raises(NotAllowed):
        publications_retry(publication_ids=[row.pk], actor=bob)
    with pytest.raises(NotFound):
        publications_retry(publication_ids=[row.pk, row.pk + 1000], actor=pki_admin)
    settings.PORTAL_LDAP_PRESET = "no-such-preset"
    with pytest.raises(ConfigurationError) as raised:
        publications_retry(publication_ids=[row.pk], actor=pki_admin)
    assert not isinstance(raised.value, DirectoryNotConfigured)
    settings.PORTAL_LDAP_URI = ""
    with pytest.raises(DirectoryNotConfigured, match=r"^No directory is configured \(PORTAL_LDAP_URI is empty\)\.$"):
        publications_retry(publication_ids=[row.pk], actor=pki_admin)
    row.refresh_from_db()
    assert row.attempts == 1 and row.state == "published"


def test_the_admin_says_when_there_is_no_directory_or_nothing_to_do(
    ldap_settings, directory, issue_certificate, alice, pki_admin, client, settings
):
    row = DirectoryPublication.objects.get(certificate=issue_certificate(alice))
    DirectoryPublication.objects.filter(pk=row.pk).update(state="removed")
    assert client.login(username="pkiadmin", password=PASSWORD)
    data = {"action": "retry_selected", "_selected_action": [row.pk]}

    response = client.post(CHANGELIST, data, follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        f"Certificate {row.certificate.serial}: nothing to do (removed)."
    ]

    settings.PORTAL_LDAP_URI = ""
    response = client.post(CHANGELIST, data, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["No directory is configured (PORTAL_LDAP_URI is empty)."]
