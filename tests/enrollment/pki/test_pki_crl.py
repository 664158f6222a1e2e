import time
from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from enrollment.pki import crl
from enrollment.pki.backends import InMemoryKeyBackend

R = x509.ReasonFlags


def sample_entries(now):
    return [
        crl.RevokedEntry(0x1001, now - timedelta(days=3), R.key_compromise),
        crl.RevokedEntry(0x1002, now - timedelta(days=2), R.unspecified),
        crl.RevokedEntry(0x1003, now - timedelta(days=1)),
        crl.RevokedEntry(0x1004, now - timedelta(hours=1), R.superseded),
        crl.RevokedEntry(0x1005, now - timedelta(hours=1), R.cessation_of_operation),
    ]


@pytest.mark.parametrize("chain", ["rsa", "ec"])
def test_crl_contents(pkis, now, chain):
    pki = pkis[chain]
    this_update = now()
    builder = crl.crl_builder(
        issuer_certificate=pki.issuing,
        entries=sample_entries(this_update),
        crl_number=42,
        this_update=this_update,
        next_update=this_update + timedelta(days=7),
    )
    revocation_list = pki.backend.sign_crl(builder)
    assert revocation_list.is_signature_valid(pki.issuing.public_key())
    assert revocation_list.issuer == pki.issuing.subject
    assert revocation_list.last_update_utc == this_update
    assert revocation_list.next_update_utc == this_update + timedelta(days=7)
    assert revocation_list.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 42
    aki = revocation_list.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = pki.issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest and aki.authority_cert_issuer is None

    reasons = {}
    for revoked in revocation_list:
        try:
            reasons[revoked.serial_number] = revoked.extensions.get_extension_for_class(
                x509.CRLReason
            ).value.reason
        except x509.ExtensionNotFound:
            reasons[revoked.serial_number] = None
    # `unspecified` is expressed by omitting the reasonCode (RFC 5280 5.3.1).
    assert reasons == {
        0x1001: R.key_compromise,
        0x1002: None,
        0x1003: None,
        0x1004: R.superseded,
        0x1005: R.cessation_of_operation,
    }


@pytest.mark.parametrize("chain", ["rsa", "ec"])
def test_crl_passes_pkilint_and_openssl(
    pkis, now, write_pem, run_cli, venv_bin, require_tool, tmp_path, chain
):
    pki = pkis[chain]
    this_update = now()
    revocation_list = pki.backend.sign_crl(
        crl.crl_builder(
            issuer_certificate=pki.issuing,
            entries=sample_entries(this_update),
            crl_number=7,
            this_update=this_update,
            next_update=this_update + timedelta(days=7),
        )
    )
    pem = write_pem(tmp_path / "smime.crl", revocation_list)
    der = tmp_path / "smime.der.crl"
    der.write_bytes(revocation_list.public_bytes(serialization.Encoding.DER))
    for path in (pem, der):
        for profile in ("BR", "PKIX"):
            result = run_cli(
                venv_bin / "lint_crl", "lint", "-t", "CRL", "-p", profile, "-s", "WARNING", path
            )
            assert result.returncode == 0, (profile, result.stdout)
            assert result.stdout.strip() == ""

    openssl = require_tool("openssl")
    result = run_cli(
        openssl,
        "crl",
        "-in",
        der,
        "-inform",
        "DER",
        "-noout",
        "-text",
        "-CAfile",
        write_pem(tmp_path / "issuing.pem", pki.issuing),
    )
    assert result.returncode == 0, result.stderr
    assert "verify OK" in result.stderr + result.stdout
    assert "Key Compromise" in result.stdout


def test_root_arl_may_last_a_year_and_carry_ca_compromise(
    ec_pki, now, write_pem, run_cli, venv_bin, tmp_path
):
    this_update = now()
    builder = crl.crl_builder(
        issuer_certificate=ec_pki.root,
        entries=[crl.RevokedEntry(0x77, this_update, R.ca_compromise)],
        crl_number=1,
        this_update=this_update,
        next_update=this_update + timedelta(days=365),
        is_arl=True,
    )
    arl = InMemoryKeyBackend(ec_pki.root_key).sign_crl(builder)
    assert arl.is_signature_valid(ec_pki.root.public_key())
    assert arl.get_revoked_certificate_by_serial_number(0x77) is not None
    result = run_cli(
        venv_bin / "lint_crl",
        "lint",
        "-t",
        "ARL",
        "-p",
        "BR",
        "-s",
        "WARNING",
        write_pem(tmp_path / "root.crl", arl),
    )
    assert result.returncode == 0, result.stdout


def test_subscriber_crl_refuses_a_year(ec_pki, now):
    this_update = now()
    with pytest.raises(ValueError, match="at most 10 days"):
        crl.crl_builder(
            issuer_certificate=ec_pki.issuing,
            entries=[],
            crl_number=1,
            this_update=this_update,
            next_update=this_update + timedelta(days=365),
        )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"next_update": timedelta(days=10, seconds=1)}, "at most 10 days"),
        ({"next_update": timedelta(0)}, "after this_update"),
        ({"crl_number": -1}, "CRL number"),
        ({"crl_number": 2**159}, "CRL number"),
    ],
)
def test_crl_validation(ec_pki, now, kwargs, message):
    this_update = now()
    arguments = dict(
        issuer_certificate=ec_pki.issuing,
        entries=[],
        crl_number=1,
        this_update=this_update,
        next_update=this_update + kwargs.pop("next_update", timedelta(days=7)),
    )
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        crl.crl_builder(**arguments)


def test_exactly_ten_days_is_allowed(ec_pki, now):
    this_update = now()
    crl.crl_builder(
        issuer_certificate=ec_pki.issuing,
        entries=[],
        crl_number=1,
        this_update=this_update,
        next_update=this_update + timedelta(days=10),
    )


@pytest.mark.parametrize(
    "entry, message",
    [
        (crl.RevokedEntry(5, datetime(2026, 1, 1), None), "timezone-aware"),
        (crl.RevokedEntry(5, None, R.certificate_hold), "certificate_hold"),
        (crl.RevokedEntry(5, None, R.ca_compromise), "ca_compromise"),
        (crl.RevokedEntry(5, None, R.remove_from_crl), "remove_from_crl"),
    ],
)
def test_bad_entries(ec_pki, now, entry, message):
    this_update = now()
    if entry.revocation_date is None:
        entry = crl.RevokedEntry(entry.serial_number, this_update, entry.reason)
    with pytest.raises(ValueError, match=message):
        crl.crl_builder(
            issuer_certificate=ec_pki.issuing,
            entries=[entry],
            crl_number=1,
            this_update=this_update,
            next_update=this_update + timedelta(days=7),
        )


def test_duplicate_serials_are_refused(ec_pki, now):
    this_update = now()
    entries = [crl.RevokedEntry(9, this_update), crl.RevokedEntry(9, this_update)]
    with pytest.raises(ValueError, match="listed twice"):
        crl.crl_builder(
            issuer_certificate=ec_pki.issuing,
            entries=entries,
            crl_number=1,
            this_update=this_update,
            next_update=this_update + timedelta(days=7),
        )


def test_hundred_thousand_entries(ec_pki, now):
    this_update = now()
    reasons = [None, R.unspecified, R.key_compromise, R.superseded, R.privilege_withdrawn]
    # A generator: the builder must accept any iterable, e.g. a streamed queryset.
    entries = (
        crl.RevokedEntry(0x10_0000 + i, this_update - timedelta(seconds=i), reasons[i % 5])
        for i in range(100_000)
    )
    started = time.perf_counter()
    builder = crl.crl_builder(
        issuer_certificate=ec_pki.issuing,
        entries=entries,
        crl_number=99,
        this_update=this_update,
        next_update=this_update + timedelta(days=7),
    )
    revocation_list = ec_pki.backend.sign_crl(builder)
    elapsed = time.perf_counter() - started
    assert len(revocation_list) == 100_000
    assert revocation_list.is_signature_valid(ec_pki.issuing.public_key())
    entry = revocation_list.get_revoked_certificate_by_serial_number(0x10_0000 + 2)
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == R.key_compromise
    # Linear work takes about a second; a quadratic builder would take minutes.
    assert elapsed < 15, elapsed
