"""Revocation, expiry and offboarding take the certificate off the directory entry (real slapd)."""

from __future__ import annotations

from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone
from slapd_server import person_dn

from enrollment.models import Certificate, DirectoryPublication
from enrollment.revocation.services import certificate_revoke

ALICE = person_dn("alice")
BINARY = "userCertificate;binary"


def test_revocation_removes_the_certificate_from_the_entry(
    ldap_settings, directory, issue_certificate, alice, approver, django_capture_on_commit_callbacks
):
    certificate = issue_certificate(alice)
    assert directory.values(ALICE, BINARY) == [bytes(certificate.der)]
    with django_capture_on_commit_callbacks(execute=True):
        certificate_revoke(serial=certificate.serial, actor=approver, reason="key_compromise")
    assert directory.values(ALICE, BINARY) == []
    assert DirectoryPublication.objects.get(certificate=certificate).state == "removed"


def test_expiry_job_removes_expired_certificates(ldap_settings, directory, issue_certificate, alice, django_capture_on_commit_callbacks):
    certificate = issue_certificate(alice)
    Certificate.objects.filter(pk=certificate.pk).update(not_after=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("expire_certificates")
    assert directory.values(ALICE, BINARY) == []
    assert DirectoryPublication.objects.get(certificate=certificate).state == "removed"


def test_revocation_while_the_directory_is_down_is_removed_later(
    ldap_settings, directory, issue_certificate, alice, approver, django_capture_on_commit_callbacks
):
    certificate = issue_certificate(alice)
    directory.stop()
    with django_capture_on_commit_callbacks(execute=True):
        certificate_revoke(serial=certificate.serial, actor=approver, reason="superseded")
    publication = DirectoryPublication.objects.get(certificate=certificate)
    assert publication.state == "remove_failed" and publication.last_error
    assert Certificate.objects.get(pk=certificate.pk).status == "revoked"  # revocation never waits for LDAP
    directory.start()
    call_command("publish_pending", "--all")
    assert directory.values(ALICE, BINARY) == []
    assert DirectoryPublication.objects.get(certificate=certificate).state == "removed"


def test_a_split_pair_puts_only_its_encryption_certificate_on_the_entry_replacing_a_dual_use_one(
    ldap_settings, directory, issue_certificate, alice, settings
):
    dual = issue_certificate(alice)
    assert directory.values(ALICE, BINARY) == [bytes(dual.der)]
    settings.PORTAL_KEY_SEPARATION = True
    encryption = issue_certificate(alice)
    signing = encryption.request.certificates.get(usage="signing")
    assert encryption.usage == "encryption"
    # Senders must never encrypt to the signing key: it was not escrowed.
    assert directory.values(ALICE, BINARY) == [bytes(encryption.der)]
    assert DirectoryPublication.objects.get(certificate=dual).state == "superseded"
    assert DirectoryPublication.objects.get(certificate=encryption).state == "published"
    assert not DirectoryPublication.objects.filter(certificate=signing).exists()
