"""Settings read from the environment the way operators write it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from django.core.checks import ERROR, WARNING, run_checks
from python_forkserver import run_python

from portal.checks import SETTINGS_TAG

ROOT = Path(__file__).resolve().parents[2]


def _engine_with(tmp_path, database_url: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "PORTAL_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "portal.settings"}
    script = "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
    return run_python(["-c", script], cwd=ROOT, env=env, check=True).stdout.strip()


def test_an_empty_database_url_means_the_embedded_sqlite(tmp_path):
    assert _engine_with(tmp_path, "") == "django.db.backends.sqlite3"
    assert _engine_with(tmp_path, "  ") == "django.db.backends.sqlite3"
    assert _engine_with(tmp_path, "postgres://u@127.0.0.1:5432/x") == "django.db.backends.postgresql"


# --- Reading the environment (django-environ, pinned to the README's contract) ---------------


def _clean_environment(tmp_path: Path, variables: dict[str, str]) -> dict[str, str]:
    """The test process's environment without its PORTAL_* and DATABASE_URL, plus `variables`."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_") and k != "DATABASE_URL"}
    return {
        **inherited,
        "PORTAL_DATA_DIR": str(tmp_path / "data"),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        **variables,
    }


def _read_settings(tmp_path: Path, names: list[str], **variables: str) -> dict[str, object]:
    script = (
        "import json, sys; from django.conf import settings; "
        "print(json.dumps({name: getattr(settings, name) for name in sys.argv[1:]}))"
    )
    result = run_python(["-c", script, *names], cwd=ROOT, env=_clean_environment(tmp_path, variables), check=True)
    return json.loads(result.stdout)


def _refusal(tmp_path: Path, **variables: str) -> str:
    """The last line settings print when they refuse to load."""
    result = run_python(["-c", "import portal.settings"], cwd=ROOT, env=_clean_environment(tmp_path, variables))
    assert result.returncode != 0, result.stdout
    return result.stderr.strip().splitlines()[-1]


def test_an_empty_value_means_the_default(tmp_path):
    values = _read_settings(
        tmp_path,
        ["PORTAL_CERTIFICATE_VALIDITY_DAYS", "PORTAL_OCSP_ENABLED", "PORTAL_EXPIRY_NOTICE_DAYS",
         "PORTAL_LDAP_PUBLISH_SMIME_CAPABLE", "PORTAL_BASE_URL"],
        PORTAL_CERTIFICATE_VALIDITY_DAYS="", PORTAL_OCSP_ENABLED="", PORTAL_EXPIRY_NOTICE_DAYS=" , ",
        PORTAL_LDAP_PUBLISH_SMIME_CAPABLE="", PORTAL_BASE_URL="",
    )
    assert values == {
        "PORTAL_CERTIFICATE_VALIDITY_DAYS": 365,
        "PORTAL_OCSP_ENABLED": True,
        "PORTAL_EXPIRY_NOTICE_DAYS": [30, 7, 1],
        "PORTAL_LDAP_PUBLISH_SMIME_CAPABLE": None,  # the preset decides
        "PORTAL_BASE_URL": "http://pki.example.org",
    }


def test_values_are_read_as_operators_write_them(tmp_path):
    values = _read_settings(
        tmp_path,
        ["ALLOWED_HOSTS", "PORTAL_KEY_SEPARATION", "PORTAL_OCSP_ENABLED", "PORTAL_EXPIRY_NOTICE_DAYS",
         "PORTAL_MAIL_DOMAINS", "PORTAL_SITE_URL", "PORTAL_LDAP_PRESET", "SECRET_KEY"],
        PORTAL_ALLOWED_HOSTS="portal.example.org, 10.0.0.5,,", PORTAL_KEY_SEPARATION=" Yes ",
        PORTAL_OCSP_ENABLED="off", PORTAL_EXPIRY_NOTICE_DAYS="14, 3", PORTAL_MAIL_DOMAINS="Example.ORG , b.example",
        PORTAL_SITE_URL="https://portal.example.org/", PORTAL_LDAP_PRESET="ActiveDirectory",
        # Not a reference to $HOME: a secret may start with "$".
        PORTAL_SECRET_KEY="$HOME-is-part-of-the-key",
    )
    assert values == {
        "ALLOWED_HOSTS": ["portal.example.org", "10.0.0.5"],
        "PORTAL_KEY_SEPARATION": True,
        "PORTAL_OCSP_ENABLED": False,
        "PORTAL_EXPIRY_NOTICE_DAYS": [14, 3],
        "PORTAL_MAIL_DOMAINS": ["example.org", "b.example"],
        "PORTAL_SITE_URL": "https://portal.example.org",
        "PORTAL_LDAP_PRESET": "activedirectory",
        "SECRET_KEY": "$HOME-is-part-of-the-key",
    }


def test_a_secret_comes_from_its_file_unless_set_itself(tmp_path):
    secret_file = tmp_path / "ca-passphrase"
    secret_file.write_text("from the file\n")
    from_file = _read_settings(tmp_path, ["PORTAL_CA_PASSPHRASE"], PORTAL_CA_PASSPHRASE_FILE=str(secret_file))
    assert from_file == {"PORTAL_CA_PASSPHRASE": "from the file"}
    both = _read_settings(
        tmp_path, ["PORTAL_CA_PASSPHRASE"], PORTAL_CA_PASSPHRASE="set itself", PORTAL_CA_PASSPHRASE_FILE=str(secret_file)
    )
    assert both == {"PORTAL_CA_PASSPHRASE": "set itself"}
    missing = tmp_path / "missing"
    assert _refusal(tmp_path, PORTAL_CA_PASSPHRASE_FILE=str(missing)) == (
        f"django.core.exceptions.ImproperlyConfigured: PORTAL_CA_PASSPHRASE_FILE: cannot read {missing}: "
        "No such file or directory"
    )


def test_development_generates_its_secrets_readable_by_the_portal_alone(tmp_path):
    first = _read_settings(tmp_path, ["SECRET_KEY", "PORTAL_PICKUP_KEK"])
    assert first == _read_settings(tmp_path, ["SECRET_KEY", "PORTAL_PICKUP_KEK"])  # kept, not made anew
    secrets_dir = tmp_path / "data" / "dev-secrets"
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    assert (secrets_dir / "portal_secret_key").read_text() == first["SECRET_KEY"]
    for path in secrets_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_production_refuses_to_start_without_its_secrets(tmp_path):
    assert _refusal(tmp_path, PORTAL_ENVIRONMENT="production") == (
        "django.core.exceptions.ImproperlyConfigured: PORTAL_SECRET_KEY (or PORTAL_SECRET_KEY_FILE) must be set in production"
    )
    assert not (tmp_path / "data" / "dev-secrets").exists()


def test_a_value_that_does_not_parse_is_one_readable_line(tmp_path):
    assert _refusal(tmp_path, PORTAL_PICKUP_DAYS="two weeks") == (
        "django.core.exceptions.ImproperlyConfigured: PORTAL_PICKUP_DAYS must be a whole number, not 'two weeks'"
    )
    assert _refusal(tmp_path, PORTAL_EXPIRY_NOTICE_DAYS="30,7,x") == (
        "django.core.exceptions.ImproperlyConfigured: "
        "PORTAL_EXPIRY_NOTICE_DAYS must be comma-separated whole numbers, not '30,7,x'"
    )
    assert _refusal(tmp_path, PORTAL_ENVIRONMENT="staging") == (
        "django.core.exceptions.ImproperlyConfigured: PORTAL_ENVIRONMENT must be 'development' or 'production'"
    )


# --- System checks (portal/checks.py) ----------------------------------------------------------


def _portal_checks(*, deploy: bool = False) -> list:
    return run_checks(tags=[SETTINGS_TAG], include_deployment_checks=deploy)


def test_the_settings_checks_are_silent_on_the_defaults():
    assert _portal_checks() == []


@pytest.mark.parametrize(
    "overrides, check_id, message",
    [
        ({"PORTAL_CERTIFICATE_VALIDITY_DAYS": 826}, "portal.E001", "PORTAL_CERTIFICATE_VALIDITY_DAYS must be 1 to 824"),
        # The SBR maximum itself: pkilint warns at exactly 825, and the pre-issuance lint refuses warnings.
        ({"PORTAL_CERTIFICATE_VALIDITY_DAYS": 825}, "portal.E001", "PORTAL_CERTIFICATE_VALIDITY_DAYS must be 1 to 824"),
        ({"PORTAL_CERTIFICATE_VALIDITY_DAYS": 0}, "portal.E001", "PORTAL_CERTIFICATE_VALIDITY_DAYS must be 1 to 824"),
        ({"PORTAL_RECOVERY_APPROVALS": 0}, "portal.E002", "PORTAL_RECOVERY_APPROVALS must be at least 1"),
        ({"PORTAL_OCSP_SIGNER": "responder"}, "portal.E003", "PORTAL_OCSP_SIGNER must be 'delegated' or 'ca'"),
        ({"PORTAL_OCSP_VALIDITY_HOURS": 7}, "portal.E004", "PORTAL_OCSP_VALIDITY_HOURS must be between 8 and 240"),
        ({"PORTAL_OCSP_VALIDITY_HOURS": 241}, "portal.E004", "PORTAL_OCSP_VALIDITY_HOURS must be between 8 and 240"),
        (
            {"PORTAL_OCSP_RESPONDER_VALIDITY_DAYS": 366},
            "portal.E005",
            "PORTAL_OCSP_RESPONDER_VALIDITY_DAYS must be 1 to 365 and cover 3 response lifetimes",
        ),
        (  # 3 × 240 hours are 30 days
            {"PORTAL_OCSP_VALIDITY_HOURS": 240, "PORTAL_OCSP_RESPONDER_VALIDITY_DAYS": 29},
            "portal.E005",
            "PORTAL_OCSP_RESPONDER_VALIDITY_DAYS must be 1 to 365 and cover 3 response lifetimes",
        ),
        ({"PORTAL_EXPIRY_NOTICE_DAYS": [30, -1]}, "portal.E006", "PORTAL_EXPIRY_NOTICE_DAYS must be whole numbers"),
        ({"PORTAL_LDAP_PRESET": "novell"}, "portal.E007", "PORTAL_LDAP_PRESET must be 'openldap' or 'activedirectory'"),
        ({"PORTAL_ORGANIZATION_COUNTRY": "de"}, "portal.E008", "the country 'de' is not an upper-case ISO 3166-1"),
        ({"PORTAL_ORGANIZATION_IDENTIFIER": "HRB12345"}, "portal.E008", "organization identifier 'HRB12345'"),
        ({"PORTAL_ORGANIZATION_IDENTIFIER": "NTRDE-HRB12345"}, "portal.E008", "does not match the organization's country"),
    ],
)
def test_a_bad_setting_is_a_system_check_error(settings, overrides, check_id, message):
    for name, value in overrides.items():
        setattr(settings, name, value)
    errors = [m for m in _portal_checks() if m.id == check_id]
    assert len(errors) == 1, _portal_checks()
    assert errors[0].level == ERROR and message in errors[0].msg and errors[0].hint


GOOD_PRODUCTION = {
    "ENVIRONMENT": "production",
    "PORTAL_BASE_URL": "http://pki.acme-corp.de",
    "PORTAL_ORGANIZATION_NAME": "ACME GmbH",
    "PORTAL_ORGANIZATION_IDENTIFIER": "NTRDE-HRB12345",
    "PORTAL_ORGANIZATION_COUNTRY": "DE",
    "PORTAL_LDAP_URI": "ldap://ldap.acme-corp.de",
    "PORTAL_LDAP_START_TLS": True,
    "PORTAL_LDAP_TLS_VERIFY": True,
    "PORTAL_SITE_URL": "https://smime.acme-corp.de",
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
}


@pytest.fixture
def production(settings):
    for name, value in GOOD_PRODUCTION.items():
        setattr(settings, name, value)
    return settings


def test_the_deploy_checks_are_silent_on_a_good_production_configuration(production):
    assert _portal_checks(deploy=True) == []


@pytest.mark.parametrize(
    "overrides, check_id, level, message",
    [
        ({"ENVIRONMENT": "development"}, "portal.E101", ERROR, "PORTAL_ENVIRONMENT is not 'production'"),
        ({"PORTAL_BASE_URL": "http://pki.example.org"}, "portal.E102", ERROR, "a reserved example name"),
        ({"PORTAL_ORGANIZATION_NAME": "Example Organization"}, "portal.E103", ERROR, "PORTAL_ORGANIZATION_NAME"),
        (
            {"PORTAL_ORGANIZATION_IDENTIFIER": "NTRUS+CA-1234567", "PORTAL_ORGANIZATION_COUNTRY": "US"},
            "portal.E103", ERROR, "PORTAL_ORGANIZATION_IDENTIFIER",
        ),
        ({"PORTAL_LDAP_TLS_VERIFY": False}, "portal.E104", ERROR, "PORTAL_LDAP_TLS_VERIFY is off"),
        ({"PORTAL_LDAP_START_TLS": False}, "portal.E105", ERROR, "plain ldap:// without PORTAL_LDAP_START_TLS"),
        ({"PORTAL_SITE_URL": "http://127.0.0.1:8000"}, "portal.W101", WARNING, "a loopback address"),
        ({"PORTAL_SITE_URL": "http://localhost:8000"}, "portal.W101", WARNING, "a loopback address"),
        (
            {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"},
            "portal.W102", WARNING, "which delivers no mail",
        ),
    ],
)
def test_a_bad_production_setting_is_reported_by_check_deploy(production, overrides, check_id, level, message):
    for name, value in overrides.items():
        setattr(production, name, value)
    reported = _portal_checks(deploy=True)
    assert [m.id for m in reported] == [check_id]
    assert reported[0].level == level and message in reported[0].msg and reported[0].hint
    assert _portal_checks() == []  # only `check --deploy` runs them


def test_ldaps_needs_no_start_tls_and_no_directory_needs_neither(production):
    production.PORTAL_LDAP_URI, production.PORTAL_LDAP_START_TLS = "ldaps://dc1.acme-corp.de", False
    assert _portal_checks(deploy=True) == []
    production.PORTAL_LDAP_URI, production.PORTAL_LDAP_TLS_VERIFY = "", False
    assert _portal_checks(deploy=True) == []


def _manage(tmp_path: Path, *arguments: str, **variables: str) -> subprocess.CompletedProcess:
    return run_python(["manage.py", *arguments], cwd=ROOT, env=_clean_environment(tmp_path, variables))


def test_manage_py_check_names_the_bad_setting(tmp_path):
    assert _manage(tmp_path, "check").returncode == 0
    result = _manage(tmp_path, "check", PORTAL_OCSP_VALIDITY_HOURS="300", PORTAL_OCSP_SIGNER="hsm")
    assert result.returncode == 1
    assert "(portal.E003) PORTAL_OCSP_SIGNER must be 'delegated' or 'ca', not 'hsm'." in result.stderr
    assert "(portal.E004) PORTAL_OCSP_VALIDITY_HOURS must be between 8 and 240, not 300." in result.stderr


def test_manage_py_check_deploy_refuses_the_demo_configuration(tmp_path):
    result = _manage(tmp_path, "check", "--deploy")
    assert result.returncode == 1
    for check_id in ("portal.E101", "portal.E102", "portal.E103", "portal.W101", "portal.W102"):
        assert f"({check_id})" in result.stderr, result.stderr


def test_a_wsgi_server_refuses_a_bad_setting_as_manage_py_does(tmp_path):
    """gunicorn imports portal.wsgi without manage.py's checks: the module runs them itself."""

    def load_wsgi(**variables: str) -> subprocess.CompletedProcess:
        return run_python(["-c", "import portal.wsgi"], cwd=ROOT, env=_clean_environment(tmp_path, variables))

    assert load_wsgi().returncode == 0
    refused = load_wsgi(PORTAL_OCSP_SIGNER="hsm")
    assert refused.returncode != 0
    assert "(portal.E003) PORTAL_OCSP_SIGNER must be 'delegated' or 'ca', not 'hsm'." in refused.stderr
