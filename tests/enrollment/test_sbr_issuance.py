"""Every configuration the portal accepts issues certificates that lint clean at WARNING (SBR v1.0.16),
and a new CA key follows SMC017v2. Through the services, with one shared CA."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from enrollment.pki import keys, lint, profiles
from enrollment.services import issuance
from enrollment.services.authorities import ca_create
from enrollment.services.requests import certificate_request_approve, certificate_request_create
from portal.checks import CERTIFICATE_VALIDITY_DAYS_MAX, check_certificate_validity_days

_keys: dict[str, object] = {}


@pytest.fixture
def cached_keys(monkeypatch):
    """One subscriber key per type for the whole module: the lint judges the type, not the key."""

    def generate(key_type):
        if key_type not in _keys:
            _keys[key_type] = keys.generate_private_key(key_type)
        return _keys[key_type]

    monkeypatch.setattr(issuance, "generate_private_key", generate)


def issue(user, approver, **kwargs):
    request = certificate_request_create(employee=user.employee, submitted_by=user, **kwargs)
    return certificate_request_approve(request_id=request.pk, approver=approver)


@pytest.mark.parametrize("validity_days", [1, CERTIFICATE_VALIDITY_DAYS_MAX])
@pytest.mark.parametrize("key_separation", [False, True])
@pytest.mark.parametrize("certificate_type", sorted(profiles.CERTIFICATE_TYPES))
@pytest.mark.parametrize("key_type", sorted(keys.KEY_TYPES))
def test_every_accepted_configuration_issues_certificates_without_warnings(
    pki, alice, approver, settings, cached_keys, key_type, certificate_type, key_separation, validity_days
):
    settings.PORTAL_CERTIFICATE_VALIDITY_DAYS = validity_days
    settings.PORTAL_KEY_SEPARATION = key_separation
    assert check_certificate_validity_days() == []  # a configuration the portal starts with

    request = issue(alice, approver, key_type=key_type, certificate_type=certificate_type)

    assert request.state == "issued", request.reason
    certificates = list(request.certificates.all())
    assert sorted(c.usage for c in certificates) == (["encryption", "signing"] if key_separation else ["dual"])
    for certificate in certificates:
        findings = [*lint.lint_smime_certificate(certificate.x509), *lint.sbr_certificate_findings(certificate.x509)]
        assert lint.findings_at_or_above(findings, "WARNING") == [], certificate.usage


def test_the_gate_refuses_a_warning(pki, alice, approver, settings, cached_keys):
    """Past the start-up check (825 days: pkilint's WARNING at the maximum), issuance refuses."""
    settings.PORTAL_CERTIFICATE_VALIDITY_DAYS = 825
    assert [m.id for m in check_certificate_validity_days()] == ["portal.E001"]

    request = issue(alice, approver, key_type="ec-p256")

    assert request.state == "failed"
    assert "WARNING cabf.smime.certificate_validity_period_at_maximum" in request.reason


# --- SMC017v2: a new CA key is RSA >= 4096 or ECDSA ----------------------------------------------


def test_ca_create_refuses_a_new_rsa_3072_key(db, settings, tmp_path):
    settings.PORTAL_CA_KEY_DIR = tmp_path / "keys"
    with pytest.raises(ValidationError) as refused:
        ca_create(common_name="ACME S/MIME CA", key_type="rsa-3072", single_tier=True)
    assert "at least 4096 bits or ECDSA" in refused.value.message_dict["key_type"][0]
    assert not (tmp_path / "keys").exists() or not any((tmp_path / "keys").iterdir())  # no key was made


def test_init_ca_refuses_rsa_3072_in_one_readable_line(db, settings, tmp_path):
    settings.PORTAL_CA_KEY_DIR = tmp_path / "keys"
    with pytest.raises(CommandError, match=r"A new CA key must be RSA with at least 4096 bits or ECDSA .*SMC017v2"):
        call_command("init_ca", "--single-tier", "--key-type", "rsa-3072")


def test_an_existing_rsa_3072_ca_may_still_be_imported(db, pki_material, settings, tmp_path):
    from enrollment.services.authorities import ca_import

    settings.PORTAL_CA_KEY_DIR = tmp_path / "keys"
    ca = ca_import(certificate=pki_material.issuing, private_key=pki_material.issuing_key, chain=[pki_material.root])
    assert ca.is_issuing and ca.certificate.public_key().key_size == 3072
