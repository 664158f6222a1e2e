"""The key ceremony for an issuing CA under a parent outside the portal, with the key in an HSM.

`init_ca --key-backend pkcs11 --csr-out` generates the key in the (real SoftHSM2) token and
writes a certificate request that openssl verifies; the parent (here an offline root held in
memory) signs it; `init_ca --import-certificate --key-backend pkcs11 --pkcs11-key-label`
adopts the token's key, and the portal then issues through it what openssl verifies up to
the root. A key that is not the certificate's, a missing label, or a key the token would let
be exported are refused in one line.
"""

from __future__ import annotations

import io
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from django.core.management import CommandError, call_command
from portal_testing import TEST_BASE_URL, require_tool

from enrollment.pki import ca as pki_ca
from enrollment.pki.backends import InMemoryKeyBackend
from enrollment.pki.keys import generate_private_key
from enrollment.pki.pkcs11 import new_key_label, pkcs11_generate_ca_key
from enrollment.pki.profiles import IssuerInfo, Organization

ORG = Organization(name="Example Widgets Inc.", organization_identifier="NTRUS+CA-1234567", country="US")


def _pem(path, *certificates) -> str:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates))
    return str(path)


def _offline_root():
    key = generate_private_key("rsa-3072")
    certificate = pki_ca.create_root_certificate(
        key=key, subject=pki_ca.ca_subject(common_name="Offline Root CA", organization=ORG)
    )
    return key, certificate


def _sign_by_root(root_key, root, request: x509.CertificateSigningRequest) -> x509.Certificate:
    issuer = IssuerInfo(
        certificate=root, crl_url=f"{TEST_BASE_URL}/pki/root.crl", ca_issuers_url=f"{TEST_BASE_URL}/pki/root.crt"
    )
    builder = pki_ca.issuing_ca_builder(public_key=request.public_key(), subject=request.subject, issuer=issuer)
    return InMemoryKeyBackend(root_key).sign_certificate(builder)


def test_a_token_key_signs_a_request_the_parent_issues_and_the_portal_adopts(
    db, hsm_settings, make_user, tmp_path
):
    from audit.models import AuditEvent
    from enrollment.keystore.ca import key_backend_for
    from enrollment.models import CertificateAuthority
    from enrollment.roles import APPROVERS
    from enrollment.services.requests import certificate_request_approve, certificate_request_create
    from escrow.services.agents import key_recovery_agent_create

    openssl = require_tool("openssl")
    label = new_key_label("ceremony")
    request_file = tmp_path / "issuing.csr"
    output = io.StringIO()
    call_command("init_ca", "--key-backend", "pkcs11", "--pkcs11-key-label", label, "--key-type", "ec-p384",
                 "--common-name", "Widgets S/MIME CA", "--csr-out", str(request_file), stdout=output)  # fmt: skip

    assert not CertificateAuthority.objects.exists()  # nothing registered before the parent signs
    assert f"--pkcs11-key-label {label}" in output.getvalue()
    verified = subprocess.run([openssl, "req", "-in", request_file, "-noout", "-verify", "-subject"],
                              capture_output=True, text=True)  # fmt: skip
    assert verified.returncode == 0 and "verify OK" in verified.stdout + verified.stderr, verified.stderr
    request = x509.load_pem_x509_csr(request_file.read_bytes())
    assert request.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "Widgets S/MIME CA"
    generated = AuditEvent.objects.get(action="ca.key_generated")
    assert generated.details["key_reference"].endswith(f";object={label}")

    root_key, root = _offline_root()
    issued = tmp_path / "issued.pem"
    _pem(issued, _sign_by_root(root_key, root, request))
    call_command("init_ca", "--key-backend", "pkcs11", "--pkcs11-key-label", label,
                 "--import-certificate", str(issued), "--import-chain", _pem(tmp_path / "root.pem", root),
                 stdout=io.StringIO())  # fmt: skip

    issuing = CertificateAuthority.objects.get(is_issuing=True)
    assert (issuing.key_backend, issuing.key_reference) == ("pkcs11", generated.details["key_reference"])
    assert issuing.parent.certificate == root and issuing.parent.key_backend == "none"
    assert key_backend_for(issuing).backend.key_protection().never_extractable

    key_recovery_agent_create(name="Ceremony recovery agent")
    alice = make_user("alice", given_name="Alice", surname="Archer")
    approver = make_user("approver", groups=[APPROVERS], given_name="Ann", surname="Approver")
    pending = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    done = certificate_request_approve(request_id=pending.pk, approver=approver)
    assert done.state == "issued", done.reason
    result = subprocess.run(
        [openssl, "verify", "-CAfile", _pem(tmp_path / "r.pem", root), "-untrusted",
         _pem(tmp_path / "i.pem", issuing.certificate), _pem(tmp_path / "leaf.pem", done.certificate.x509)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_adoption_refuses_a_foreign_key_a_missing_label_and_key_files(db, hsm_settings, softhsm, tmp_path):
    from enrollment.models import CertificateAuthority

    root_key, root = _offline_root()
    other = new_key_label("other")
    pkcs11_generate_ca_key(module_path=softhsm.module_path, token_label=softhsm.token_label, key_label=other,
                           pin=softhsm.pin, key_type="ec-p256")  # fmt: skip
    # A certificate for a key that is not the token's key of that label.
    stranger = generate_private_key("ec-p256")
    request = x509.CertificateSigningRequestBuilder().subject_name(
        pki_ca.ca_subject(common_name="Stranger CA", organization=ORG)
    ).sign(stranger, hashes.SHA256())
    certificate = _pem(tmp_path / "stranger.pem", _sign_by_root(root_key, root, request))

    base = ["init_ca", "--key-backend", "pkcs11", "--import-certificate", certificate]
    with pytest.raises(CommandError, match="does not belong to the CA certificate"):
        call_command(*base, "--pkcs11-key-label", other)
    with pytest.raises(CommandError, match=r"no private key .*missing-label"):
        call_command(*base, "--pkcs11-key-label", "missing-label")
    with pytest.raises(CommandError, match="name the token's key with --pkcs11-key-label"):
        call_command(*base)
    with pytest.raises(CommandError, match="--csr-out needs --key-backend pkcs11"):
        call_command("init_ca", "--csr-out", str(tmp_path / "x.csr"))
    existing = tmp_path / "exists.csr"
    existing.write_text("keep me")
    with pytest.raises(CommandError, match="exists already"):
        call_command("init_ca", "--key-backend", "pkcs11", "--csr-out", str(existing))
    assert existing.read_text() == "keep me"
    assert not CertificateAuthority.objects.exists()
