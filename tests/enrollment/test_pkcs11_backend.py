"""The CA key in an HSM: the PKCS#11 backend against a real SoftHSM2 token.

The CA signs certificates, CRLs and OCSP responses through the token (openssl and pkilint
check what it signs), its private key cannot be read out, and `init_ca --key-backend pkcs11`
gives a two-tier CA through which the portal issues, publishes its CRL and answers OCSP.
"""

from __future__ import annotations

import io
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp as x509_ocsp
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkilint_testing import is_pkilint_tool, pkilint_in_process
from portal_testing import BIN, TEST_BASE_URL, require_tool
from softhsm import SoftHsm

from enrollment.pki import ca as pki_ca
from enrollment.pki import crl as pki_crl
from enrollment.pki import ocsp as pki_ocsp
from enrollment.pki.backends import InMemoryKeyBackend
from enrollment.pki.keys import generate_private_key
from enrollment.pki.pkcs11 import (
    Pkcs11Error,
    Pkcs11KeyBackend,
    new_key_label,
    pkcs11_generate_ca_key,
)
from enrollment.pki.profiles import IssuerInfo, Organization, Subscriber, smime_certificate_builder

ORG = Organization(name="Example Widgets Inc.", organization_identifier="NTRUS+CA-1234567", country="US")
KEY_TYPES = ["rsa-3072", "rsa-4096", "ec-p256", "ec-p384"]


def _backend(hsm: SoftHsm, key_label: str, *, pin: str | None = None) -> Pkcs11KeyBackend:
    return Pkcs11KeyBackend(
        module_path=hsm.module_path, token_label=hsm.token_label, key_label=key_label, pin=pin or hsm.pin
    )


def _token_key(hsm: SoftHsm, key_type: str) -> Pkcs11KeyBackend:
    label = new_key_label(f"test-{key_type}")
    pkcs11_generate_ca_key(
        module_path=hsm.module_path, token_label=hsm.token_label, key_label=label, pin=hsm.pin, key_type=key_type
    )
    return _backend(hsm, label)


def _run(*args) -> subprocess.CompletedProcess[str]:
    if is_pkilint_tool(args[0]):  # in this process: tests/pkilint_testing.py
        return pkilint_in_process(*args)
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, errors="replace", timeout=120)


def _pem(path: Path, *objects) -> Path:
    path.write_bytes(b"".join(o.public_bytes(Encoding.PEM) for o in objects))
    return path


def _raw_session(hsm: SoftHsm):
    """A python-pkcs11 session of our own (logged in: the login is shared within a process)."""
    token = pkcs11.lib(hsm.module_path).get_token(token_label=hsm.token_label)
    try:
        return token.open(rw=True, user_pin=hsm.pin)
    except pkcs11.exceptions.UserAlreadyLoggedIn:
        return token.open(rw=True)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)


# --- The token ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root():
    key = generate_private_key("ec-p384")
    certificate = pki_ca.create_root_certificate(
        key=key, subject=pki_ca.ca_subject(common_name="Example HSM Root CA", organization=ORG)
    )
    return key, certificate


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_the_token_signs_certificates_crls_and_ocsp_responses_that_openssl_and_pkilint_accept(
    softhsm, root, key_type, tmp_path
):
    openssl = require_tool("openssl")
    backend = _token_key(softhsm, key_type)
    root_key, root_certificate = root
    root_info = IssuerInfo(
        certificate=root_certificate, crl_url=f"{TEST_BASE_URL}/pki/root.crl", ca_issuers_url=f"{TEST_BASE_URL}/pki/root.crt"
    )
    issuing = InMemoryKeyBackend(root_key).sign_certificate(
        pki_ca.issuing_ca_builder(
            public_key=backend.public_key(),
            subject=pki_ca.ca_subject(common_name=f"Example HSM {key_type} CA", organization=ORG),
            issuer=root_info,
        )
    )
    issuer_info = IssuerInfo(
        certificate=issuing,
        crl_url=f"{TEST_BASE_URL}/pki/issuing.crl",
        ca_issuers_url=f"{TEST_BASE_URL}/pki/issuing.crt",
        ocsp_url=f"{TEST_BASE_URL}/ocsp/issuing",
    )
    leaf = backend.sign_certificate(
        smime_certificate_builder(
            certificate_type="sponsor-strict",
            subscriber=Subscriber("jane.doe@example.com", "Jane", "Doe"),
            organization=ORG,
            issuer=issuer_info,
            public_key=generate_private_key("ec-p256").public_key(),
            not_before=_now(),
        )
    )
    leaf.verify_directly_issued_by(issuing)
    chain = _pem(tmp_path / "chain.pem", issuing, root_certificate)
    issuing_pem, leaf_pem = _pem(tmp_path / "issuing.pem", issuing), _pem(tmp_path / "leaf.pem", leaf)

    result = _run(openssl, "verify", "-CAfile", _pem(tmp_path / "root.pem", root_certificate),
                  "-untrusted", issuing_pem, "-purpose", "smimesign", leaf_pem)  # fmt: skip
    assert result.returncode == 0 and "leaf.pem: OK" in result.stdout, result.stdout + result.stderr
    for tool, args in (
        ("lint_cabf_smime_cert", ("lint", "-d", "-s", "WARNING", leaf_pem)),
        ("lint_pkix_signer_signee_cert_chain", ("lint", issuing_pem, leaf_pem)),
    ):
        result = _run(BIN / tool, *args)
        assert result.returncode == 0, (tool, result.stdout + result.stderr)

    now = _now()
    revocation_list = backend.sign_crl(
        pki_crl.crl_builder(
            issuer_certificate=issuing,
            entries=[pki_crl.RevokedEntry(leaf.serial_number, now, x509.ReasonFlags.key_compromise)],
            crl_number=3,
            this_update=now,
            next_update=now + timedelta(days=7),
        )
    )
    crl_pem = _pem(tmp_path / "issuing.crl", revocation_list)
    result = _run(openssl, "crl", "-in", crl_pem, "-noout", "-CAfile", chain)
    assert result.returncode == 0 and "verify OK" in result.stdout + result.stderr, result.stderr
    result = _run(BIN / "lint_crl", "lint", "-t", "CRL", "-p", "BR", "-s", "WARNING", crl_pem)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout

    request = pki_ocsp.parse_request(
        x509_ocsp.OCSPRequestBuilder().add_certificate(leaf, issuing, hashes.SHA1()).build().public_bytes(Encoding.DER)
    )
    response = backend.sign_ocsp_response(
        pki_ocsp.response_builder(
            request=request,
            status=pki_ocsp.StatusInfo(pki_ocsp.CertStatus.REVOKED, now, x509.ReasonFlags.key_compromise),
            responder=pki_ocsp.Responder(issuing, delegated=False),
            this_update=now,
            validity=timedelta(hours=24) - timedelta(seconds=1),
        )
    )
    response_der = tmp_path / "response.der"
    response_der.write_bytes(response.public_bytes(Encoding.DER))
    result = _run(openssl, "ocsp", "-respin", response_der, "-issuer", issuing_pem, "-cert", leaf_pem,
                  "-CAfile", chain, "-no_nonce", "-resp_text")  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Response verify OK" in output and ": revoked" in output, output
    result = _run(BIN / "lint_ocsp_response", "lint", "-s", "WARNING", response_der)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout


@pytest.mark.parametrize("key_type", ["rsa-3072", "ec-p256"])
def test_the_private_key_cannot_be_read_out_of_the_token(softhsm, key_type, tmp_path):
    backend = _token_key(softhsm, key_type)
    protection = backend.key_protection()
    assert protection.token and protection.sensitive and protection.always_sensitive
    assert not protection.extractable and protection.never_extractable and protection.local

    label = backend.reference.key_label
    session = _raw_session(softhsm)
    try:
        private_key = session.get_key(ObjectClass.PRIVATE_KEY, label=label)
        secret_attributes = [Attribute.PRIVATE_EXPONENT, Attribute.PRIME_1] if key_type.startswith("rsa") else [Attribute.VALUE]
        for attribute in secret_attributes:
            with pytest.raises(pkcs11.exceptions.AttributeSensitive):
                private_key[attribute]
        assert private_key[Attribute.SIGN] and not private_key[Attribute.DECRYPT]
        # Nor wrapped (encrypted) out under a key of our choosing.
        wrapping_key = session.generate_key(KeyType.AES, 256, capabilities=MechanismFlag.WRAP | MechanismFlag.ENCRYPT)
        with pytest.raises(pkcs11.exceptions.KeyUnextractable):
            wrapping_key.wrap_key(private_key, mechanism=Mechanism.AES_KEY_WRAP_PAD)
        with pytest.raises(pkcs11.exceptions.PKCS11Error):  # the flags only ever get stricter
            private_key[Attribute.EXTRACTABLE] = True
    finally:
        session.close()
    # A second PKCS#11 client (OpenSC's pkcs11-tool) reads the same: generated in the token
    # ("local"), and never was or can be read or exported.
    result = _run(require_tool("pkcs11-tool"), "--module", softhsm.module_path, "--token-label", softhsm.token_label,
                  "--login", "--pin", softhsm.pin, "--list-objects", "--type", "privkey")  # fmt: skip
    assert result.returncode == 0, result.stderr
    ours = [block for block in result.stdout.split("Private Key Object") if f"label:      {label}\n" in block]
    assert len(ours) == 1, result.stdout
    assert "Access:     sensitive, always sensitive, never extractable, local\n" in ours[0], ours[0]


def test_a_key_that_could_be_exported_is_refused(softhsm):
    label = new_key_label("exportable")
    session = _raw_session(softhsm)
    try:
        session.generate_keypair(
            KeyType.RSA, 2048, label=label, store=True,
            private_template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
        )  # fmt: skip
    finally:
        session.close()
    with pytest.raises(Pkcs11Error, match="can be exported"):
        _backend(softhsm, label).public_key()


def test_problems_with_the_token_read_as_one_line(softhsm):
    backend = _token_key(softhsm, "ec-p256")
    with pytest.raises(Pkcs11Error, match="no private key pkcs11:token=.*;object=missing"):
        _backend(softhsm, "missing").public_key()
    with pytest.raises(Pkcs11Error, match="user PIN is wrong"):
        _backend(softhsm, backend.reference.key_label, pin="not-the-pin").public_key()
    # Not tried again: an HSM locks the PIN after a few wrong ones.
    with pytest.raises(Pkcs11Error, match="refused before; not trying it again"):
        _backend(softhsm, backend.reference.key_label, pin="not-the-pin").public_key()
    with pytest.raises(Pkcs11Error, match="no token with this label"):
        Pkcs11KeyBackend(module_path=softhsm.module_path, token_label="nope", key_label="x", pin=softhsm.pin).public_key()
    with pytest.raises(Pkcs11Error, match="does not exist"):
        Pkcs11KeyBackend(module_path="/nonexistent/libpkcs11.so", token_label="t", key_label="x", pin="1").public_key()
    with pytest.raises(Pkcs11Error, match="labelled .* already"):
        pkcs11_generate_ca_key(
            module_path=softhsm.module_path, token_label=softhsm.token_label,
            key_label=backend.reference.key_label, pin=softhsm.pin, key_type="ec-p256",
        )  # fmt: skip
    # After the wrong PIN, the right one works again (the session is reopened).
    assert isinstance(_backend(softhsm, backend.reference.key_label).public_key(), ec.EllipticCurvePublicKey)


def _small_crl_builder(backend: Pkcs11KeyBackend, number: int) -> x509.CertificateRevocationListBuilder:
    now = _now()
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki_ca.ca_subject(common_name="Example Token CA", organization=ORG))
        .last_update(now)
        .next_update(now + timedelta(days=1))
        .add_extension(x509.CRLNumber(number), critical=False)
    )


def test_threads_share_the_session_one_operation_at_a_time(softhsm):
    backend = _token_key(softhsm, "ec-p256")
    with ThreadPoolExecutor(max_workers=8) as pool:
        crls = list(pool.map(lambda n: backend.sign_crl(_small_crl_builder(backend, n)), range(32)))
    assert all(c.is_signature_valid(backend.public_key()) for c in crls)
    assert sorted(c.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number for c in crls) == list(range(32))


def test_a_forked_worker_opens_its_own_session(softhsm):
    backend = _token_key(softhsm, "ec-p256")
    backend.sign_crl(_small_crl_builder(backend, 1))  # the parent's session exists before the fork
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: like a prefork web or task worker
        os.close(read_end)
        status = 1
        try:
            os.write(write_end, backend.sign_crl(_small_crl_builder(backend, 2)).public_bytes(Encoding.DER))
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        der = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert x509.load_der_x509_crl(der).is_signature_valid(backend.public_key())
    assert backend.sign_crl(_small_crl_builder(backend, 3)).is_signature_valid(backend.public_key())


# --- The portal: init_ca, issuance, CRL and OCSP through the token ---------------------------


def test_init_ca_in_the_token_issues_publishes_a_crl_and_answers_ocsp(
    db, hsm_settings, make_user, client, tmp_path
):
    from django.core.management import call_command

    from audit.models import AuditEvent
    from enrollment.keystore.ca import key_backend_for
    from enrollment.models import CertificateAuthority
    from enrollment.revocation.ocsp import ocsp_respond
    from enrollment.revocation.services import certificate_revoke
    from enrollment.roles import APPROVERS
    from enrollment.services.requests import certificate_request_approve, certificate_request_create
    from escrow.services.agents import key_recovery_agent_create

    openssl = require_tool("openssl")
    label = new_key_label("issuing-ca")
    call_command("init_ca", "--key-backend", "pkcs11", "--pkcs11-key-label", label, "--key-type", "ec-p384",
                 stdout=io.StringIO())  # fmt: skip

    issuing = CertificateAuthority.objects.get(is_issuing=True)
    root = issuing.parent
    assert (issuing.key_backend, root.key_backend) == ("pkcs11", "pkcs11")
    token = f"pkcs11:token={hsm_settings.PORTAL_PKCS11_TOKEN_LABEL}"
    assert issuing.key_reference == f"{token};object={label}"
    assert root.key_reference == f"{token};object={label}-root"
    assert not Path(hsm_settings.PORTAL_CA_KEY_DIR).exists() or not any(Path(hsm_settings.PORTAL_CA_KEY_DIR).glob("*.pem"))
    created = AuditEvent.objects.filter(action="ca.created").order_by("id")
    assert [e.details["key_reference"] for e in created] == [root.key_reference, issuing.key_reference]
    assert key_backend_for(issuing).backend.key_protection().never_extractable

    key_recovery_agent_create(name="HSM test recovery agent")
    alice = make_user("alice", given_name="Alice", surname="Archer")
    approver = make_user("approver", groups=[APPROVERS], given_name="Ann", surname="Approver")
    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    request = certificate_request_approve(request_id=request.pk, approver=approver)
    assert request.state == "issued", request.reason
    leaf = request.certificate.x509
    root_pem = _pem(tmp_path / "root.pem", root.certificate)
    issuing_pem = _pem(tmp_path / "issuing.pem", issuing.certificate)
    leaf_pem = _pem(tmp_path / "leaf.pem", leaf)
    result = _run(openssl, "verify", "-CAfile", root_pem, "-untrusted", issuing_pem, leaf_pem)
    assert result.returncode == 0, result.stdout + result.stderr

    certificate_revoke(serial=request.certificate.serial, actor=None, reason="key_compromise")
    response = client.get(f"/pki/{issuing.slug}.crl")
    assert response.status_code == 200, response.content
    crl_der = tmp_path / "issuing.crl"
    crl_der.write_bytes(response.content)
    chain = _pem(tmp_path / "chain.pem", issuing.certificate, root.certificate)
    result = _run(openssl, "crl", "-inform", "DER", "-in", crl_der, "-noout", "-text", "-CAfile", chain)
    assert result.returncode == 0 and "verify OK" in result.stdout + result.stderr, result.stderr
    assert x509.load_der_x509_crl(response.content).get_revoked_certificate_by_serial_number(leaf.serial_number)

    ocsp_request = x509_ocsp.OCSPRequestBuilder().add_certificate(leaf, issuing.certificate, hashes.SHA1()).build()
    for signer in ("ca", "delegated"):  # the CA key itself, or a responder certificate it signed
        hsm_settings.PORTAL_OCSP_SIGNER = signer
        der = ocsp_respond(ca_slug=issuing.slug, request_der=ocsp_request.public_bytes(Encoding.DER))
        response_der = tmp_path / f"{signer}.ocsp"
        response_der.write_bytes(der)
        result = _run(openssl, "ocsp", "-respin", response_der, "-issuer", issuing_pem, "-cert", leaf_pem,
                      "-CAfile", chain, "-no_nonce", "-resp_text")  # fmt: skip
        output = result.stdout + result.stderr
        assert result.returncode == 0 and "Response verify OK" in output and ": revoked" in output, (signer, output)


def test_a_token_that_refuses_is_a_configuration_error(db, hsm_settings, softhsm):
    from django.core.management import CommandError, call_command

    from core.exceptions import ConfigurationError
    from enrollment.keystore.ca import key_backend_for
    from enrollment.models import CertificateAuthority

    with pytest.raises(CommandError, match="needs the pkcs11 key backend"):
        call_command("init_ca", "--pkcs11-key-label", "x", "--single-tier", "--slug", "other")
    hsm_settings.PORTAL_PKCS11_TOKEN_LABEL = ""
    with pytest.raises(CommandError, match="PORTAL_PKCS11_TOKEN_LABEL"):
        call_command("init_ca", "--key-backend", "pkcs11", "--single-tier", "--slug", "other")
    assert not CertificateAuthority.objects.exists()

    hsm_settings.PORTAL_PKCS11_TOKEN_LABEL = softhsm.token_label
    output = io.StringIO()
    call_command("init_ca", "--key-backend", "pkcs11", "--single-tier", "--key-type", "ec-p256",
                 "--slug", "hsm-single", stdout=output)  # fmt: skip
    ca = CertificateAuthority.objects.get(slug="hsm-single")
    assert ca.key_reference.startswith(f"pkcs11:token={softhsm.token_label};object=hsm-single-")
    assert f"hsm-single key: {ca.key_reference}" in output.getvalue()
    hsm_settings.PORTAL_PKCS11_PIN = "wrong-pin"
    with pytest.raises(ConfigurationError, match="user PIN is wrong"):
        key_backend_for(ca)
