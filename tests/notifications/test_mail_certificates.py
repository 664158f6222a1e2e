"""Mail about certificate requests and certificates: who gets it, when, the link it carries
(followed with the recipient's own log-in), text and HTML parts, no secret, no PKCS#12."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from mail_testing import assert_mail_shape, html_of, links, mails_to, path_of

from enrollment.models import Certificate
from enrollment.notifications.models import OutboxMail
from enrollment.revocation.services import certificate_revoke
from enrollment.services.expiry import expiry_notices_send
from enrollment.services.requests import (
    certificate_request_approve,
    certificate_request_create,
    certificate_request_reject,
)

pytestmark = pytest.mark.django_db


def test_a_new_request_mails_every_approver_but_the_requester_with_the_queue_and_the_request(
    pki, alice, approver, approver2, pki_admin, client_of, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request = certificate_request_create(employee=approver.employee, submitted_by=approver, key_type="ec-p256")
    # Separation of duties: the approver who asks is not asked to decide; PKI administrators are
    # only the fallback when no approver is left.
    assert sorted(m.to[0] for m in mail.outbox) == ["approver2@example.org"]
    (message,) = mail.outbox
    assert f"#{request.pk}" in message.subject and "approver@example.org" in message.subject
    request_link, queue_link = links(message.body)[:2]
    assert request_link.endswith(f"/admin/enrollment/certificaterequest/{request.pk}/change/")
    assert queue_link.endswith("/admin/enrollment/certificaterequest/?state__exact=pending")
    assert_mail_shape(message, link=request_link)
    assert_mail_shape(message, link=queue_link)

    decider = client_of(approver2)
    page = decider.get(path_of(request_link))
    assert page.status_code == 200 and page.context["original"] == request
    queue = decider.get(path_of(queue_link))
    assert queue.status_code == 200
    assert [r.pk for r in queue.context["cl"].result_list] == [request.pk]
    assert mails_to("alice@example.org") == []  # alice is no approver


def test_without_an_eligible_approver_the_pki_administrators_are_asked(
    pki, approver, pki_admin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        certificate_request_create(employee=approver.employee, submitted_by=approver, key_type="ec-p256")
    assert [m.to for m in mail.outbox] == [["pkiadmin@example.org"]]


def test_inactive_approvers_and_accounts_without_an_address_get_nothing(
    pki, alice, approver, approver2, django_capture_on_commit_callbacks
):
    approver2.is_active = False
    approver2.save()
    with django_capture_on_commit_callbacks(execute=True):
        certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    assert [m.to for m in mail.outbox] == [["approver@example.org"]]


def test_a_rejection_tells_the_employee_why_with_a_link_home(
    pki, alice, approver, client_of, django_capture_on_commit_callbacks
):
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    with django_capture_on_commit_callbacks(execute=True):
        certificate_request_reject(request_id=request.pk, approver=approver, reason="Contractor <b>not</b> eligible")
    (message,) = mails_to("alice@example.org")
    assert "rejected" in message.subject and f"#{request.pk}" in message.subject
    assert "Reason: Contractor <b>not</b> eligible" in message.body  # the text part is not HTML-escaped
    assert "Contractor &lt;b&gt;not&lt;/b&gt; eligible" in html_of(message)  # the HTML part is
    (home,) = links(message.body)
    assert_mail_shape(message, link=home)
    page = client_of(alice).get(path_of(home))
    assert page.status_code == 200 and page.templates[0].name == "portal/home.html"


def test_the_certificate_ready_mail_has_the_pickup_deadline_and_the_download_link(
    pki, alice, bob, approver, client_of, django_capture_on_commit_callbacks
):
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    with django_capture_on_commit_callbacks(execute=True):
        request = certificate_request_approve(request_id=request.pk, approver=approver)
    certificate = request.certificate
    deadline = certificate.pickup.expires_at
    (message,) = mails_to("alice@example.org")
    assert f"download it by {deadline:%Y-%m-%d}" in message.subject
    assert f"Download it by {deadline:%Y-%m-%d %H:%M} UTC" in message.body and certificate.serial in message.body
    download = next(link for link in links(message.body) if link.endswith(f"/certificates/{certificate.serial}/pkcs12/"))
    assert_mail_shape(message, link=download)  # no PKCS#12 attached: it is downloaded after logging in
    page = client_of(alice).get(path_of(download))
    assert page.status_code == 200 and page.templates[0].name == "portal/download.html"
    assert page.context["certificate"] == certificate
    assert client_of(bob).get(path_of(download)).status_code == 404  # the link opens for the owner only
    assert client_of(approver).get(path_of(download)).status_code == 404


def test_a_split_pair_lists_both_certificates_each_with_its_link(
    pki, alice, approver, settings, django_capture_on_commit_callbacks
):
    settings.PORTAL_KEY_SEPARATION = True
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    with django_capture_on_commit_callbacks(execute=True):
        certificate_request_approve(request_id=request.pk, approver=approver)
    (message,) = mails_to("alice@example.org")
    for certificate in Certificate.objects.filter(request=request):
        assert f"/certificates/{certificate.serial}/pkcs12/" in message.body
    assert "signing only" in message.body and "encryption only" in message.body


def test_a_failed_issuance_tells_the_employee(pki, alice, approver, django_capture_on_commit_callbacks):
    pki["agent"].is_active = False  # no recovery agent: the key cannot be escrowed, nothing is issued
    pki["agent"].save()
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    with django_capture_on_commit_callbacks(execute=True):
        request = certificate_request_approve(request_id=request.pk, approver=approver)
    assert request.state == "failed"
    (message,) = mails_to("alice@example.org")
    assert "could not be issued" in message.subject and request.reason in message.body
    assert_mail_shape(message, link=links(message.body)[0])


def test_a_revocation_tells_the_owner_the_reason_and_what_to_do(
    pki, issued, alice, approver, client_of, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        certificate_revoke(serial=issued.serial, actor=approver, reason="key_compromise", comment="Laptop stolen")
    (message,) = mails_to("alice@example.org")
    assert issued.serial in message.subject and "revoked" in message.subject
    assert "key compromise" in message.body and "Comment: Laptop stolen" in message.body
    assert "Request a new certificate" in message.body and "What to do now" in message.body
    found = links(message.body)
    recovery = next(link for link in found if path_of(link) == "/recovery/")  # escrowed: the key can come back
    home = next(link for link in found if path_of(link) == "/")
    assert_mail_shape(message, link=home)
    assert client_of(alice).get(path_of(recovery)).status_code == 200
    assert client_of(alice).get(path_of(home)).status_code == 200


def test_the_expiry_reminder_is_text_and_html_with_the_renewal_link(pki, issued, alice, client_of):
    Certificate.objects.filter(pk=issued.pk).update(not_after=timezone.now() + timedelta(days=5))
    assert expiry_notices_send(thresholds=[7]) == 1  # the expiry job sends at once (its own ledger)
    (message,) = mail.outbox
    assert message.to == [issued.mailbox] and issued.serial in message.body
    (home,) = links(message.body)
    assert_mail_shape(message, link=home)
    assert client_of(alice).get(path_of(home)).status_code == 200
    assert not OutboxMail.objects.filter(about=f"certificate:{issued.pk}").exists()


def test_approver_mail_that_never_went_out_is_dropped_once_the_request_is_decided(
    pki, alice, approver, approver2, settings, django_capture_on_commit_callbacks
):
    from mail_testing import REFUSING_BACKEND

    settings.EMAIL_BACKEND = REFUSING_BACKEND
    with django_capture_on_commit_callbacks(execute=True):
        request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    assert OutboxMail.objects.filter(kind="request.pending", state="pending").count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        certificate_request_reject(request_id=request.pk, approver=approver, reason="Duplicate")
    # Nobody is asked later to decide what is decided; the employee's mail waits for the mail server.
    assert list(OutboxMail.objects.values_list("kind", "to", "state")) == [
        ("request.rejected", "alice@example.org", "pending")
    ]


def test_a_bulk_enrollment_mails_each_approver_once_with_the_queue_of_its_batch(
    pki, alice, approver, approver2, pki_admin, client_of, settings, django_capture_on_commit_callbacks
):
    """Not one mail per request: a file of thousands would bury the approvers (their queue lists the batch)."""
    from enrollment.bulk import bulk_file_read
    from enrollment.bulk_batches import enrollment_batch_run

    settings.PORTAL_MAIL_DOMAINS = ["example.org"]
    with django_capture_on_commit_callbacks(execute=True):
        elsewhere = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    mail.outbox.clear()
    people = b"mail,given_name,surname\n" + b"".join(f"p{n}@example.org,Given{n},Surname{n}\n".encode() for n in range(5))
    with django_capture_on_commit_callbacks(execute=True):
        outcome = enrollment_batch_run(
            actor=pki_admin, rows=bulk_file_read(people, name="people.csv"), source="people.csv", key_type="ec-p256"
        )
    assert outcome.written == 5
    # Whoever started the batch submitted every request in it: only the others are asked to decide.
    assert sorted(m.to[0] for m in mail.outbox) == ["approver2@example.org", "approver@example.org"]
    (message,) = mails_to("approver@example.org")
    assert message.subject == f"Enrollment batch #{outcome.batch.pk}: 5 certificate requests wait for approval"
    (queue_link,) = links(message.body)[:1]
    assert_mail_shape(message, link=queue_link)
    queue = client_of(approver).get(path_of(queue_link))
    assert queue.status_code == 200
    listed = {r.pk for r in queue.context["cl"].result_list}
    assert listed == set(outcome.batch.requests.values_list("pk", flat=True)) and elsewhere.pk not in listed
    refused = client_of(approver).get("/admin/enrollment/certificaterequest/?batch=latest")
    assert refused.status_code < 500 and "is not an enrollment batch number" in refused.content.decode()


def test_a_batch_approved_by_policy_asks_no_approver(pki, approver, pki_admin, settings, django_capture_on_commit_callbacks):
    from enrollment.bulk import bulk_file_read
    from enrollment.bulk_batches import enrollment_batch_run

    settings.PORTAL_MAIL_DOMAINS = ["example.org"]
    settings.PORTAL_ENROLLMENT_AUTO_APPROVE = True
    with django_capture_on_commit_callbacks(execute=True):
        outcome = enrollment_batch_run(
            actor=pki_admin, rows=bulk_file_read(b"mail,given_name,surname\np0@example.org,Given,Surname\n", name="p.csv"),
            source="p.csv", key_type="ec-p256",
        )  # fmt: skip
    assert outcome.batch.approved_by_policy and mails_to("approver@example.org") == []
