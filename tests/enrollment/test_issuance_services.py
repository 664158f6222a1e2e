"""Request → approval → issuance through the services, against the test CA."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.core.exceptions import ValidationError
from portal_testing import audit_tamper

from audit.models import AuditEvent
from core.exceptions import InvalidState, NotAllowed, SeparationOfDuties
from enrollment.models import Certificate, CertificateRequest
from enrollment.pki.lint import findings_at_or_above, lint_smime_certificate
from enrollment.services.requests import (
    certificate_request_approve,
    certificate_request_create,
    certificate_request_reject,
)
from escrow.models import EscrowRecord, KeyRecoveryAgent, PickupCopy


def _issue(employee_user, approver, **kwargs):
    request = certificate_request_create(employee=employee_user.employee, submitted_by=employee_user, **kwargs)
    return certificate_request_approve(request_id=request.pk, approver=approver)


@pytest.mark.parametrize("key_type", ["rsa-3072", "rsa-4096", "ec-p256", "ec-p384"])
@pytest.mark.parametrize("certificate_type", ["sponsor-strict", "mailbox-strict"])
def test_every_key_and_certificate_type_issues_a_lint_clean_certificate(
    pki, alice, approver, pkilint, key_type, certificate_type
):
    request = _issue(alice, approver, key_type=key_type, certificate_type=certificate_type)

    assert request.state == CertificateRequest.State.ISSUED, request.reason
    certificate = request.certificate
    cert = certificate.x509
    assert cert.issuer == pki["issuing"].certificate.subject
    assert format(cert.serial_number, "x") == certificate.serial
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey if key_type.startswith("rsa") else ec.EllipticCurvePublicKey)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["alice@example.org"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    assert findings_at_or_above(lint_smime_certificate(cert), "WARNING") == []
    code, output = pkilint("lint_cabf_smime_cert", cert.public_bytes(Encoding.PEM), args=("lint", "-d", "-s", "WARNING"))
    assert code == 0, output
    code, output = pkilint(
        "lint_pkix_signer_signee_cert_chain",
        pki["issuing"].certificate.public_bytes(Encoding.PEM),
        cert.public_bytes(Encoding.PEM),
        args=("lint",),
    )
    assert code == 0, output


def test_issuance_escrows_the_key_and_keeps_a_pickup_copy(pki, alice, approver):
    request = _issue(alice, approver)
    certificate = request.certificate

    escrow = EscrowRecord.objects.get(certificate=certificate)
    assert list(escrow.agents.all()) == [pki["agent"]]
    assert PickupCopy.objects.filter(certificate=certificate).exists()
    assert request.decided_by == approver and request.decided_at is not None
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["request.created", "request.approved", "escrow.created", "certificate.issued"]


def test_nobody_approves_their_own_request(pki, approver):
    request = certificate_request_create(employee=approver.employee, submitted_by=approver)

    with pytest.raises(SeparationOfDuties, match="separation of duties"):
        certificate_request_approve(request_id=request.pk, approver=approver)
    request.refresh_from_db()
    assert request.state == CertificateRequest.State.PENDING


def test_who_submitted_on_behalf_cannot_approve_either(pki, alice, approver, approver2):
    request = certificate_request_create(employee=alice.employee, submitted_by=approver)

    with pytest.raises(SeparationOfDuties):
        certificate_request_approve(request_id=request.pk, approver=approver)
    assert certificate_request_approve(request_id=request.pk, approver=approver2).state == "issued"


def test_employees_cannot_approve(pki, alice, bob):
    request = certificate_request_create(employee=alice.employee, submitted_by=alice)

    with pytest.raises(NotAllowed):
        certificate_request_approve(request_id=request.pk, approver=bob)


def test_employees_request_only_for_themselves(pki, alice, bob):
    with pytest.raises(NotAllowed):
        certificate_request_create(employee=alice.employee, submitted_by=bob)


def test_a_request_is_decided_once(pki, alice, approver, approver2):
    request = _issue(alice, approver)

    with pytest.raises(InvalidState):
        certificate_request_approve(request_id=request.pk, approver=approver2)
    with pytest.raises(InvalidState):
        certificate_request_reject(request_id=request.pk, approver=approver2, reason="late")
    assert Certificate.objects.filter(request=request).count() == 1


def test_rejection_needs_a_reason_and_records_it(pki, alice, approver):
    request = certificate_request_create(employee=alice.employee, submitted_by=alice)

    with pytest.raises(ValidationError):
        certificate_request_reject(request_id=request.pk, approver=approver, reason="  ")
    rejected = certificate_request_reject(request_id=request.pk, approver=approver, reason="Not an employee")
    assert rejected.state == "rejected" and rejected.reason == "Not an employee"
    assert not Certificate.objects.filter(request=request).exists()


@pytest.mark.parametrize(
    "kwargs, field",
    [({"key_type": "rsa-1024"}, "key_type"), ({"certificate_type": "organization-strict"}, "certificate_type")],
)
def test_bad_request_input_is_a_field_error(pki, alice, kwargs, field):
    with pytest.raises(ValidationError) as excinfo:
        certificate_request_create(employee=alice.employee, submitted_by=alice, **kwargs)
    assert field in excinfo.value.message_dict


def test_sponsor_validated_needs_a_name(pki, make_user):
    nameless = make_user("nameless")
    nameless.employee.given_name = ""
    nameless.employee.save()

    with pytest.raises(ValidationError, match="given name and surname"):
        certificate_request_create(employee=nameless.employee, submitted_by=nameless)
    request = certificate_request_create(
        employee=nameless.employee, submitted_by=nameless, certificate_type="mailbox-strict"
    )
    assert request.state == "pending"


def test_one_pending_request_at_a_time(pki, alice):
    certificate_request_create(employee=alice.employee, submitted_by=alice)
    with pytest.raises(ValidationError, match="pending request"):
        certificate_request_create(employee=alice.employee, submitted_by=alice)


def test_mail_domains_setting_limits_what_the_ca_certifies(pki, alice, settings):
    settings.PORTAL_MAIL_DOMAINS = ["corp.example.com"]
    with pytest.raises(ValidationError, match="does not certify addresses at example.org"):
        certificate_request_create(employee=alice.employee, submitted_by=alice)


def test_failure_leaves_the_request_failed_and_nothing_half_issued(pki, alice, approver):
    KeyRecoveryAgent.objects.update(is_active=False)
    request = certificate_request_create(employee=alice.employee, submitted_by=alice)

    result = certificate_request_approve(request_id=request.pk, approver=approver)

    assert result.state == CertificateRequest.State.FAILED
    assert "key recovery agent" in result.reason
    assert not Certificate.objects.exists()
    assert not EscrowRecord.objects.exists() and not PickupCopy.objects.exists()
    assert AuditEvent.objects.filter(action="request.failed", object_id=str(request.pk)).exists()


def test_pre_issuance_lint_refuses_what_pkilint_rejects(pki, alice, approver):
    # A CA whose URLs name an internal host would issue certificates that break the SBR.
    pki["issuing"].base_url = "http://localhost"
    pki["issuing"].save()
    request = certificate_request_create(employee=alice.employee, submitted_by=alice)

    result = certificate_request_approve(request_id=request.pk, approver=approver)

    assert result.state == CertificateRequest.State.FAILED
    assert "Pre-issuance lint refused" in result.reason and "localhost" in result.reason
    assert not Certificate.objects.exists()


def test_audit_chain_holds_after_the_workflow(pki, alice, approver):
    from audit.chain import audit_chain_breaks

    _issue(alice, approver)
    assert AuditEvent.objects.count() >= 4
    assert audit_chain_breaks(AuditEvent.objects.order_by("id")) is None
    first = AuditEvent.objects.order_by("id").first()
    audit_tamper(lambda: AuditEvent.objects.filter(pk=first.pk).update(actor_name="mallory"))
    assert audit_chain_breaks(AuditEvent.objects.order_by("id")).pk == first.pk


def test_the_stored_subject_names_attributes_readably_also_after_the_migration(pki, alice, approver):
    import importlib

    from django.apps import apps

    certificate = _issue(alice, approver).certificate
    assert certificate.subject.startswith("emailAddress=alice@example.org,CN=")
    assert "GN=" in certificate.subject and "organizationIdentifier=" in certificate.subject
    readable = certificate.subject
    # Rows stored before 0004 carry cryptography's OID-only spelling; the migration rewrites them.
    Certificate.objects.filter(pk=certificate.pk).update(subject=certificate.x509.subject.rfc4514_string())
    assert "2.5.4.42=" in Certificate.objects.get(pk=certificate.pk).subject
    importlib.import_module("enrollment.migrations.0004_readable_subjects").readable_subjects(apps, None)
    assert Certificate.objects.get(pk=certificate.pk).subject == readable
