"""Key recovery agents on the command line: create_kra, import_kra, deactivate_kra, rewrap_escrow."""

from __future__ import annotations

import stat
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from django.core.management import call_command
from django.core.management.base import CommandError
from portal_testing import TEST_BASE_URL, require_tool
from python_forkserver import run_python
from test_recovery_support import AGENT_PASSPHRASE, DOWNLOAD_PASSPHRASE, agent_p12, agent_user, spki  # noqa: F401

from audit.models import AuditEvent
from enrollment.pki import ca as pki_ca
from enrollment.pki.backends import InMemoryKeyBackend
from enrollment.pki.keys import generate_private_key
from enrollment.pki.pkcs12 import load_pkcs12, pkcs12_bundle
from enrollment.pki.profiles import IssuerInfo
from enrollment.services.requests import certificate_request_approve, certificate_request_create
from escrow.models import EscrowRecord, KeyRecoveryAgent
from escrow.services.agents import agent_credential_load
from escrow.services.escrow import escrow_record_open
from escrow.services.pickups import recovery_pkcs12_export
from escrow.services.recovery import recovery_request_approve, recovery_request_complete, recovery_request_create

NEW_PASSPHRASE = "the-new-agent-passphrase-42"


@pytest.fixture
def passphrase_file(tmp_path):
    path = tmp_path / "kra.pass"
    path.write_text(NEW_PASSPHRASE + "\n")
    return path


def test_create_kra_writes_a_private_pkcs12_and_stores_only_the_certificate(
    pki, agent_user, tmp_path, passphrase_file, capsys
):
    out = tmp_path / "kra2.p12"
    call_command("create_kra", "Second Agent", "--out", str(out), "--user", "agent", "--passphrase-file", str(passphrase_file))
    assert "Created key recovery agent Second Agent" in capsys.readouterr().out
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    bundle = load_pkcs12(out.read_bytes(), NEW_PASSPHRASE)
    agent = KeyRecoveryAgent.objects.get(name="Second Agent")
    assert agent.user == agent_user and agent.is_active
    assert bundle.cert.certificate == agent.certificate and spki(bundle.key) == spki(agent.certificate)
    assert pki_ca.is_key_recovery_agent_certificate(agent.certificate)
    assert agent.certificate.issuer == pki["material"].issuing.subject
    assert AuditEvent.objects.filter(action="kra.created", object_id=str(agent.pk)).exists()

    # openssl opens it with the passphrase.
    result = subprocess.run(
        [require_tool("openssl"), "pkcs12", "-in", str(out), "-nokeys", "-passin", f"pass:{NEW_PASSPHRASE}"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0 and "Second Agent" in result.stdout

    with pytest.raises(CommandError, match="exists"):
        call_command("create_kra", "Third", "--out", str(out), "--passphrase-file", str(passphrase_file))
    assert not KeyRecoveryAgent.objects.filter(name="Third").exists()


def test_create_kra_refusals(pki, tmp_path, passphrase_file, monkeypatch):
    with pytest.raises(CommandError, match="at least 12 characters"):
        monkeypatch.setenv("PORTAL_KRA_PASSPHRASE", "short")
        call_command("create_kra", "A", "--out", str(tmp_path / "a.p12"))
    with pytest.raises(CommandError, match="does not exist"):
        call_command("create_kra", "A", "--out", str(tmp_path / "no" / "a.p12"), "--passphrase-file", str(passphrase_file))
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("create_kra", "A", "--out", str(tmp_path / "a.p12"), "--user", "nobody", "--passphrase-file", str(passphrase_file))
    with pytest.raises(CommandError):
        call_command("create_kra", "A", "--out", str(tmp_path / "a.p12"), "--key-type", "ec-p256", "--passphrase-file", str(passphrase_file))
    monkeypatch.delenv("PORTAL_KRA_PASSPHRASE")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    with pytest.raises(CommandError, match="no passphrase"):
        call_command("create_kra", "A", "--out", str(tmp_path / "a.p12"))
    assert KeyRecoveryAgent.objects.count() == 1 and not (tmp_path / "a.p12").exists()


def test_create_kra_prompts_twice(pki, tmp_path, monkeypatch):
    answers = iter([NEW_PASSPHRASE, NEW_PASSPHRASE + "x"])
    monkeypatch.delenv("PORTAL_KRA_PASSPHRASE", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    with pytest.raises(CommandError, match="differ"):
        call_command("create_kra", "A", "--out", str(tmp_path / "a.p12"))
    answers = iter([NEW_PASSPHRASE, NEW_PASSPHRASE])
    call_command("create_kra", "A", "--out", str(tmp_path / "a.p12"))
    assert load_pkcs12((tmp_path / "a.p12").read_bytes(), NEW_PASSPHRASE).key is not None


def _issuing_info(pki) -> IssuerInfo:
    return IssuerInfo(
        certificate=pki["material"].issuing,
        crl_url=f"{TEST_BASE_URL}/pki/issuing-ca.crl",
        ca_issuers_url=f"{TEST_BASE_URL}/pki/issuing-ca.crt",
    )


def _sign(pki, builder) -> x509.Certificate:
    return InMemoryKeyBackend(pki["material"].issuing_key).sign_certificate(builder)


def _plain_certificate(key, *, key_usage: x509.KeyUsage | None, ca: bool = False, name="imported") -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    now = datetime.now(timezone.utc)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=30))
    )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(key, hashes.SHA256())


def _ku(**flags) -> x509.KeyUsage:
    values = dict(
        digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
    )
    values.update(flags)
    return x509.KeyUsage(**values)


def test_import_kra_checks_the_certificate_is_fit_for_key_transport(pki, agent_user, tmp_path, capsys):
    rsa_key = generate_private_key("rsa-3072")
    good = _sign(
        pki,
        pki_ca.kra_certificate_builder(
            public_key=rsa_key.public_key(),
            subject=pki_ca.ca_subject(common_name="Imported Agent", organization=_organization()),
            issuer=_issuing_info(pki),
        ),
    )
    pem = tmp_path / "good.pem"
    pem.write_bytes(good.public_bytes(serialization.Encoding.PEM))
    call_command("import_kra", str(pem), "--user", "agent")
    agent = KeyRecoveryAgent.objects.get(name="Imported Agent")
    assert agent.user == agent_user and agent.certificate == good
    assert AuditEvent.objects.filter(action="kra.imported", object_id=str(agent.pk)).exists()
    with pytest.raises(CommandError, match="registered already"):
        call_command("import_kra", str(pem))

    ec_key = generate_private_key("ec-p256")
    cases = {
        "ec.pem": (_plain_certificate(ec_key, key_usage=_ku(key_agreement=True)), "not RSA"),
        "no-ku.pem": (_plain_certificate(rsa_key, key_usage=None, name="a"), "no keyUsage"),
        "sign-only.pem": (_plain_certificate(rsa_key, key_usage=_ku(digital_signature=True), name="b"), "lacks keyEncipherment"),
        "ca.pem": (_plain_certificate(rsa_key, key_usage=_ku(key_encipherment=True), ca=True, name="c"), "CA certificate"),
    }
    for filename, (certificate, message) in cases.items():
        path = tmp_path / filename
        path.write_bytes(certificate.public_bytes(serialization.Encoding.DER))
        with pytest.raises(CommandError, match=message):
            call_command("import_kra", str(path))
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"hello")
    with pytest.raises(CommandError, match="not an X.509 certificate"):
        call_command("import_kra", str(junk))
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_kra", str(tmp_path / "missing.pem"))
    assert KeyRecoveryAgent.objects.count() == 2


def _organization():
    from enrollment.services.authorities import organization_from_settings

    return organization_from_settings()


def test_deactivate_kra(pki, tmp_path, passphrase_file):
    old = pki["agent"]
    with pytest.raises(CommandError, match="only active key recovery agent"):
        call_command("deactivate_kra", str(old.pk))
    call_command("create_kra", "New Agent", "--out", str(tmp_path / "new.p12"), "--passphrase-file", str(passphrase_file))
    with pytest.raises(CommandError, match="no key recovery agent 'Nobody'"):
        call_command("deactivate_kra", "Nobody")
    call_command("deactivate_kra", old.name)
    old.refresh_from_db()
    assert not old.is_active
    assert AuditEvent.objects.filter(action="kra.deactivated", object_id=str(old.pk)).exists()
    with pytest.raises(CommandError, match="deactivated already"):
        call_command("deactivate_kra", old.fingerprint_sha256)


def test_rewrap_escrow_moves_every_record_to_the_active_agents(
    pki, issued, alice, approver, approver2, agent_user, agent_p12, tmp_path, passphrase_file, capsys
):

    second = certificate_request_create(employee=approver2.employee, submitted_by=approver2, key_type="ec-p256")
    second = certificate_request_approve(request_id=second.pk, approver=approver).certificate
    old = pki["agent"]
    new_p12 = tmp_path / "new.p12"
    call_command("create_kra", "New Agent", "--out", str(new_p12), "--user", "agent", "--passphrase-file", str(passphrase_file))
    call_command("deactivate_kra", old.name)
    new_agent = KeyRecoveryAgent.objects.get(name="New Agent")
    capsys.readouterr()

    # The new agent cannot open the records yet: every one is reported, the exit is non-zero.
    with pytest.raises(CommandError, match="2 escrow record\\(s\\) could not be opened with New Agent's key"):
        call_command("rewrap_escrow", "--kra-p12", str(new_p12), "--passphrase-file", str(passphrase_file))
    assert capsys.readouterr().err.count("not re-encrypted") == 2

    old_p12 = tmp_path / "old.p12"
    old_p12.write_bytes(agent_p12)
    old_pass = tmp_path / "old.pass"
    old_pass.write_text(AGENT_PASSPHRASE)
    call_command("rewrap_escrow", "--kra-p12", str(old_p12), "--passphrase-file", str(old_pass))
    assert "Re-encrypted 2 escrow record(s)" in capsys.readouterr().out
    assert AuditEvent.objects.filter(action="escrow.rewrapped").count() == 2

    credential = agent_credential_load(pkcs12_data=new_p12.read_bytes(), passphrase=NEW_PASSPHRASE)
    for record in EscrowRecord.objects.select_related("certificate"):
        assert list(record.agents.all()) == [new_agent]
        key = escrow_record_open(record=record, credential=credential)
        assert spki(key) == spki(record.certificate.x509)
    # The old agent's key no longer opens them; openssl agrees the new agent's does.
    old_credential = agent_credential_load(pkcs12_data=agent_p12, passphrase=AGENT_PASSPHRASE)
    from escrow import cms

    with pytest.raises(ValueError):
        cms.open_envelope(
            envelope_der=bytes(EscrowRecord.objects.get(certificate=issued).envelope_der),
            certificate=old_credential.agent.certificate, private_key=old_credential.private_key,
        )
    _openssl_decrypts(EscrowRecord.objects.get(certificate=issued), new_p12, tmp_path)

    # Running it again changes nothing.
    call_command("rewrap_escrow", "--kra-p12", str(new_p12), "--passphrase-file", str(passphrase_file))
    assert "Re-encrypted 0 escrow record(s) to the active agents; 2 already were" in capsys.readouterr().out

    # And the new agent completes a recovery of a record escrowed before it existed.
    request = recovery_request_create(requested_by=alice, reason="lost", serial=issued.serial)
    recovery_request_approve(request_id=request.pk, approver=approver)
    recovery_request_approve(request_id=request.pk, approver=approver2)
    recovery_request_complete(
        request_id=request.pk, agent=agent_user, agent_pkcs12=new_p12.read_bytes(), passphrase=NEW_PASSPHRASE
    )
    _, data = recovery_pkcs12_export(user=alice, request_id=request.pk, passphrase=DOWNLOAD_PASSPHRASE)
    assert spki(load_pkcs12(data, DOWNLOAD_PASSPHRASE).key) == spki(issued.x509)


def _openssl_decrypts(record, p12_path, tmp_path):
    openssl = require_tool("openssl")
    pem = tmp_path / "agent.pem"
    subprocess.run(
        [openssl, "pkcs12", "-in", str(p12_path), "-nodes", "-out", str(pem), "-passin", f"pass:{NEW_PASSPHRASE}"],
        check=True, capture_output=True,
    )
    envelope = tmp_path / "escrow.der"
    envelope.write_bytes(bytes(record.envelope_der))
    result = subprocess.run(
        [openssl, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", str(envelope), "-recip", str(pem), "-inkey", str(pem)],
        capture_output=True,
    )
    assert result.returncode == 0, result.stderr
    from enrollment.pki.keys import private_key_from_der

    assert spki(private_key_from_der(result.stdout)) == spki(record.certificate.x509)


def test_rewrap_escrow_failures_are_one_line(pki, tmp_path):
    junk = tmp_path / "junk.p12"
    junk.write_bytes(b"junk")
    with pytest.raises(CommandError, match="cannot be opened"):
        call_command("rewrap_escrow", "--kra-p12", str(junk), "--passphrase-file", str(_write(tmp_path, "x" * 12)))
    with pytest.raises(CommandError, match="cannot read the passphrase file"):
        call_command("rewrap_escrow", "--kra-p12", str(junk), "--passphrase-file", str(tmp_path / "nope"))
    other_key = generate_private_key("rsa-3072")
    stranger = _plain_certificate(other_key, key_usage=_ku(key_encipherment=True))
    p12 = tmp_path / "stranger.p12"
    p12.write_bytes(pkcs12_bundle(key=other_key, certificate=stranger, chain=[], friendly_name="s", passphrase="x" * 12))
    with pytest.raises(CommandError, match="not a registered key recovery agent"):
        call_command("rewrap_escrow", "--kra-p12", str(p12), "--passphrase-file", str(_write(tmp_path, "x" * 12)))


def _write(tmp_path, text):
    path = tmp_path / "pass.txt"
    path.write_text(text)
    return path


def test_commands_fail_without_traceback_in_a_subprocess(pki, tmp_path):
    """The real CLI: one line on stderr, exit status 1 (no Python traceback)."""
    import os

    from django.conf import settings

    # A real base URL: the placeholder's start-up warning (portal.W001) would be on stderr too.
    env = {**os.environ, "PORTAL_DATA_DIR": str(tmp_path / "data"), "PORTAL_KRA_PASSPHRASE": "x" * 12,
           "PORTAL_BASE_URL": "http://pki.widgets-inc.com"}
    result = run_python(
        [str(settings.BASE_DIR / "manage.py"), "import_kra", str(tmp_path / "missing.pem")],
        env=env, cwd=settings.BASE_DIR,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and result.stderr.strip().startswith("CommandError: cannot read")
