"""The issued certificates pass pkilint: the CLI (as an auditor would run it) and the API."""

import threading
from unittest import mock

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from enrollment.pki import keys, lint, profiles

MATRIX = [
    (chain, key_type, certificate_type)
    for chain in ("rsa", "ec")
    for key_type in sorted(keys.KEY_TYPES)
    for certificate_type in sorted(profiles.CERTIFICATE_TYPES)
]


def warnings_or_worse(findings):
    return lint.findings_at_or_above(findings, "WARNING")


@pytest.mark.parametrize("chain, key_type, certificate_type", MATRIX)
def test_issued_certificate_passes_pkilint(
    pkis,
    subscriber_keys,
    subscriber_builder,
    write_pem,
    run_cli,
    venv_bin,
    tmp_path,
    chain,
    key_type,
    certificate_type,
):
    pki = pkis[chain]
    cert = pki.backend.sign_certificate(
        subscriber_builder(pki, subscriber_keys[key_type].public_key(), certificate_type)
    )
    leaf = write_pem(tmp_path / "cert.pem", cert)
    issuing = write_pem(tmp_path / "issuing.pem", pki.issuing)

    result = run_cli(venv_bin / "lint_cabf_smime_cert", "lint", "-d", "-o", "-s", "WARNING", leaf)
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == ""
    # -o reports the detected type: proof that -d found our policy OID.
    expected = {"sponsor-strict": "SPONSORED-STRICT", "mailbox-strict": "MAILBOX-STRICT"}
    assert result.stderr.strip() == expected[certificate_type]

    chain_result = run_cli(venv_bin / "lint_pkix_signer_signee_cert_chain", "lint", issuing, leaf)
    assert chain_result.returncode == 0, chain_result.stdout
    assert chain_result.stdout.strip() == ""

    findings = lint.lint_smime_certificate(cert)
    assert warnings_or_worse(findings) == []
    # pkilint always notes how the SKI was computed; that INFO proves the API really linted.
    assert any(f.code == "pkix.subject_key_identifier_method_1_identified" for f in findings)


def test_the_console_scripts_answer_as_the_in_process_runs_do(
    ec_pki, subscriber_keys, subscriber_builder, write_pem, venv_bin, tmp_path
):
    """The suite runs pkilint's linters in process (tests/pkilint_testing.py): the real console
    scripts, as an auditor runs them, give the same exit code and the same findings."""
    from pkilint_testing import pkilint_in_process, run_console_script

    leaf = write_pem(
        tmp_path / "leaf.pem",
        ec_pki.backend.sign_certificate(subscriber_builder(ec_pki, subscriber_keys["ec-p256"].public_key())),
    )
    root = write_pem(tmp_path / "root.pem", ec_pki.root)  # a CA, linted as a subscriber: findings
    for command in (
        ("lint_cabf_smime_cert", "lint", "-d", "-o", "-s", "WARNING", leaf),
        ("lint_cabf_smime_cert", "lint", "-t", "MAILBOX-STRICT", "-s", "WARNING", root),
        ("lint_pkix_cert", "lint", "-s", "WARNING", root),
    ):
        script = run_console_script(venv_bin / command[0], *command[1:])
        in_process = pkilint_in_process(command[0], *command[1:])
        assert (in_process.returncode, in_process.stdout, in_process.stderr) == (
            script.returncode,
            script.stdout,
            script.stderr,
        ), command
    assert script.returncode == 0 and "ERROR" not in script.stdout
    assert run_console_script(venv_bin / "lint_cabf_smime_cert", "lint", "-t", "MAILBOX-STRICT", root).returncode != 0


def test_in_process_runs_parse_the_public_suffix_list_once(ec_pki, subscriber_keys, subscriber_builder, write_pem,
                                                           tmp_path):
    """Every run of a console script builds validators that parse the Public Suffix List (five
    times, a quarter of a second each); in process they share one parsed list, and the library's
    own class is back in place after each run."""
    import publicsuffixlist
    from pkilint_testing import pkilint_in_process, shared_public_suffix_list

    leaf = write_pem(
        tmp_path / "leaf.pem",
        ec_pki.backend.sign_certificate(subscriber_builder(ec_pki, subscriber_keys["ec-p256"].public_key())),
    )
    original = publicsuffixlist.PublicSuffixList
    shared_public_suffix_list.cache_clear()
    with mock.patch.object(original, "_parse", autospec=True, side_effect=original._parse) as parse:
        for _ in range(3):
            result = pkilint_in_process("lint_cabf_smime_cert", "lint", "-d", "-s", "WARNING", leaf)
            assert (result.returncode, result.stdout.strip()) == (0, ""), result
            assert publicsuffixlist.PublicSuffixList is original
    assert parse.call_count == 1


@pytest.mark.parametrize("usage", ["signing", "encryption"])
@pytest.mark.parametrize("key_type", ["rsa-3072", "ec-p384"])
def test_single_use_certificates_pass_pkilint(ec_pki, subscriber_keys, subscriber_builder, key_type, usage):
    for certificate_type in profiles.CERTIFICATE_TYPES:
        cert = ec_pki.backend.sign_certificate(
            subscriber_builder(ec_pki, subscriber_keys[key_type].public_key(), certificate_type, usage)
        )
        assert warnings_or_worse(lint.lint_smime_certificate(cert)) == []


@pytest.mark.parametrize("chain", ["rsa", "ec"])
def test_root_and_issuing_ca_pass_the_chain_linter(pkis, write_pem, run_cli, venv_bin, tmp_path, chain):
    pki = pkis[chain]
    root = write_pem(tmp_path / "root.pem", pki.root)
    issuing = write_pem(tmp_path / "issuing.pem", pki.issuing)
    result = run_cli(venv_bin / "lint_pkix_signer_signee_cert_chain", "lint", root, issuing)
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("chain", ["rsa", "ec"])
def test_ca_certificates_pass_the_rfc5280_linter(pkis, write_pem, run_cli, venv_bin, tmp_path, chain):
    for name in ("root", "issuing"):
        path = write_pem(tmp_path / f"{name}.pem", getattr(pkis[chain], name))
        result = run_cli(venv_bin / "lint_pkix_cert", "lint", "-s", "WARNING", path)
        assert result.returncode == 0, (name, result.stdout)


def test_lint_before_signing_passes_a_good_builder(rsa_pki, subscriber_keys, subscriber_builder):
    builder = subscriber_builder(rsa_pki, subscriber_keys["ec-p256"].public_key())
    findings = lint.lint_before_signing(builder, ca_public_key=rsa_pki.issuing_key.public_key())
    assert lint.blocking_findings(findings) == []
    assert warnings_or_worse(findings) == []


def _variant(cert: x509.Certificate, *, subject=None, replace=None) -> x509.CertificateBuilder:
    """A builder copying `cert` (public API only), with another subject or one extension swapped."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject or cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for extension in cert.extensions:
        value = replace if replace is not None and extension.oid == replace.oid else extension.value
        builder = builder.add_extension(value, extension.critical)
    return builder


@pytest.fixture
def good_certificate(ec_pki, subscriber_keys, subscriber_builder):
    return ec_pki.backend.sign_certificate(subscriber_builder(ec_pki, subscriber_keys["rsa-3072"].public_key()))


def test_copied_builder_is_clean(ec_pki, good_certificate):
    findings = lint.lint_before_signing(_variant(good_certificate), ca_public_key=ec_pki.issuing_key.public_key())
    assert warnings_or_worse(findings) == []


def test_lint_before_signing_blocks_server_auth(ec_pki, good_certificate):
    builder = _variant(
        good_certificate,
        replace=x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.SERVER_AUTH]),
    )
    blocking = lint.blocking_findings(lint.lint_before_signing(builder, ca_public_key=ec_pki.issuing_key.public_key()))
    assert [(f.severity, f.code) for f in blocking] == [("ERROR", "cabf.smime.prohibited_eku_present")]
    assert blocking[0].path.startswith("certificate.tbsCertificate.extensions")


def test_lint_before_signing_blocks_street_address(ec_pki, good_certificate):
    subject = x509.Name(list(good_certificate.subject) + [x509.NameAttribute(NameOID.STREET_ADDRESS, "1 Main St")])
    blocking = lint.blocking_findings(
        lint.lint_before_signing(
            _variant(good_certificate, subject=subject),
            ca_public_key=ec_pki.issuing_key.public_key(),
        )
    )
    assert "cabf.smime.prohibited_attribute" in {f.code for f in blocking}
    assert any("2.5.4.9" in f.message for f in blocking)  # streetAddress


def test_maximum_validity_is_flagged_and_refused(ec_pki, subscriber_keys, subscriber_builder):
    builder = subscriber_builder(ec_pki, subscriber_keys["ec-p256"].public_key(), validity_days=825)
    findings = lint.lint_before_signing(builder, ca_public_key=ec_pki.issuing_key.public_key())
    # The gate refuses WARNINGs too: whatever the portal signs lints clean at WARNING.
    assert [f.code for f in lint.blocking_findings(findings)] == ["cabf.smime.certificate_validity_period_at_maximum"]
    builder = subscriber_builder(ec_pki, subscriber_keys["ec-p256"].public_key(), validity_days=824)
    findings = lint.lint_before_signing(builder, ca_public_key=ec_pki.issuing_key.public_key())
    assert warnings_or_worse(findings) == []


def test_throwaway_keys_match_the_ca_algorithm_and_are_cached(pkis):
    for pki in pkis.values():
        ca_key = pki.issuing_key.public_key()
        first = lint._throwaway_key_like(ca_key)
        assert keys.key_type_of(first) == keys.key_type_of(ca_key)
        assert lint._throwaway_key_like(ca_key) is first
        assert first.public_key() != ca_key


def test_validators_are_built_once(ec_pki, subscriber_keys, subscriber_builder):
    cert = ec_pki.backend.sign_certificate(subscriber_builder(ec_pki, subscriber_keys["ec-p256"].public_key()))
    lint.lint_smime_certificate(cert)
    cached = dict(lint._validators)
    lint.lint_smime_certificate(cert)
    assert lint._validators == cached
    assert all(lint._validators[k] is v for k, v in cached.items())


def test_linting_from_threads(ec_pki, subscriber_keys, subscriber_builder):
    certs = [
        ec_pki.backend.sign_certificate(
            subscriber_builder(ec_pki, subscriber_keys["ec-p256"].public_key(), certificate_type)
        )
        for certificate_type in profiles.CERTIFICATE_TYPES
        for _ in range(4)
    ]
    results: list = [None] * len(certs)

    def work(i):
        results[i] = warnings_or_worse(lint.lint_smime_certificate(certs[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(certs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [[]] * len(certs)


def test_certificate_without_smime_policy_is_refused(ec_pki):
    with pytest.raises(ValueError, match="no CA/B Forum S/MIME policy OID"):
        lint.lint_smime_certificate(ec_pki.root)


def test_severity_helpers():
    findings = [
        lint.Finding(severity, f"code.{severity.lower()}", "", "certificate")
        for severity in ("FATAL", "ERROR", "WARNING", "NOTICE", "INFO")
    ]
    # The pre-issuance gate refuses WARNINGs too (SMIME-PROFILE.md: zero findings at WARNING).
    assert [f.severity for f in lint.blocking_findings(findings)] == ["FATAL", "ERROR", "WARNING"]
    assert [f.severity for f in lint.findings_at_or_above(findings, "warning")] == [
        "FATAL",
        "ERROR",
        "WARNING",
    ]
    assert len(lint.findings_at_or_above(findings, "INFO")) == 5
    with pytest.raises(ValueError, match="unknown severity"):
        lint.findings_at_or_above(findings, "LOUD")
