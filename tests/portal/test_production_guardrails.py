"""Production refuses the demo's leniencies: DEBUG, insecure cookies, weak secrets, placeholder URLs.

The guardrails are system checks (portal/checks.py, tag portal_production): `check --deploy`
reports them, a WSGI server in production refuses to start on them, development never sees them.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest
from django.core.checks import ERROR, run_checks
from django.core.management import CommandError, call_command
from python_forkserver import run_python

from portal.checks import PRODUCTION_TAG
from portal.checks_deploy import secret_strength_problem

ROOT = Path(__file__).resolve().parents[2]


def _strong() -> str:
    return secrets.token_urlsafe(48)


def production_environment(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """A complete production configuration, as an operator would write it, on an embedded SQLite."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_") and k != "DATABASE_URL"}
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_ENVIRONMENT": "production",
        "PORTAL_DATA_DIR": str(tmp_path / "data"),
        "PORTAL_SECRET_KEY": _strong(),
        "PORTAL_CA_PASSPHRASE": _strong(),
        "PORTAL_PICKUP_KEK": _strong(),
        "PORTAL_AUDIT_ANCHOR_KEY": _strong(),
        "PORTAL_AUDIT_CHAIN_KEY": _strong(),
        "PORTAL_ALLOWED_HOSTS": "smime.acme-corp.de",
        "PORTAL_CSRF_TRUSTED_ORIGINS": "https://smime.acme-corp.de",
        "PORTAL_BASE_URL": "http://pki.acme-corp.de",
        "PORTAL_SITE_URL": "https://smime.acme-corp.de",
        "PORTAL_ORGANIZATION_NAME": "ACME GmbH",
        "PORTAL_ORGANIZATION_IDENTIFIER": "NTRDE-HRB12345",
        "PORTAL_ORGANIZATION_COUNTRY": "DE",
        "PORTAL_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "PORTAL_EMAIL_HOST": "mail.acme-corp.de",
        "PORTAL_TRUSTED_PROXIES": "127.0.0.1",
        **overrides,
    }


def run(tmp_path: Path, *arguments: str, **overrides: str) -> subprocess.CompletedProcess:
    return run_python([*arguments], cwd=ROOT, env=production_environment(tmp_path, **overrides))


def test_check_deploy_is_clean_on_a_full_production_configuration(tmp_path):
    result = run(tmp_path, "manage.py", "check", "--deploy")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced).", result.stdout + result.stderr
    assert result.stderr.strip() == ""


def test_check_deploy_refuses_debug_insecure_cookies_weak_secrets_and_placeholder_urls(tmp_path):
    result = run(
        tmp_path, "manage.py", "check", "--deploy",
        PORTAL_DEBUG="true", PORTAL_SECURE_COOKIES="false", PORTAL_CA_PASSPHRASE="x",
        PORTAL_PICKUP_KEK="a" * 64, PORTAL_AUDIT_ANCHOR_KEY="short-but-not-one-char",
        PORTAL_BASE_URL="http://pki.example.org", PORTAL_SITE_URL="https://smime.example.org",
    )
    assert result.returncode == 1
    for expected in (
        "(portal.E110) PORTAL_DEBUG is on in production.",
        "(portal.E111) Cookies are not secure in production: SESSION_COOKIE_SECURE, CSRF_COOKIE_SECURE off.",
        "(portal.E112) PORTAL_CA_PASSPHRASE is 1 character long, fewer than 43",
        "(portal.E112) PORTAL_PICKUP_KEK is made of only 1 distinct characters",
        "(portal.E112) PORTAL_AUDIT_ANCHOR_KEY is 22 characters long, fewer than 43",
        "secrets.token_urlsafe(48)",
        "(portal.E102) PORTAL_BASE_URL is 'http://pki.example.org', a reserved example name.",
        "(portal.E113) PORTAL_SITE_URL is 'https://smime.example.org', a reserved example name.",
    ):
        assert expected in result.stderr, result.stderr
    assert "PORTAL_SECRET_KEY is" not in result.stderr  # the strong ones are not named


def test_a_wsgi_server_in_production_refuses_what_check_deploy_refuses(tmp_path):
    assert run(tmp_path, "-c", "import portal.wsgi").returncode == 0
    refused = run(tmp_path, "-c", "import portal.wsgi", PORTAL_DEBUG="true")
    assert refused.returncode != 0
    assert "(portal.E110) PORTAL_DEBUG is on in production." in refused.stderr


@pytest.mark.parametrize(
    "value, problem",
    [
        ("", "0 characters long"),
        ("x", "1 character long"),
        ("correct-horse-battery", "21 characters long"),
        ("ab" * 30, "only 2 distinct characters"),
        ("UuiKxrCRr6dVeuO5NiU7jW0ZeF-qJnLPOw315oh8Vxc", None),  # 43 characters: 32 bytes
        ("edb2683c531ca84c21bde5da54500a8e0d6c8496bbb0f1958bc4fcd1b11e8178", None),  # 32 bytes in hex
        ("qp6mHIaCt-pepLXdddA4L438A6wUQ1SBBURFsMU_Z3Rdc7h1N7LiTBm3FzgDeVa_", None),  # what development generates
    ],
)
def test_secret_strength(value, problem):
    found = secret_strength_problem(value)
    assert (found is None) if problem is None else (problem in found)


def test_development_is_never_refused_by_the_guardrails(settings):
    settings.DEBUG, settings.SESSION_COOKIE_SECURE, settings.PORTAL_CA_PASSPHRASE = True, False, "x"
    assert run_checks(tags=[PRODUCTION_TAG], include_deployment_checks=True) == []
    settings.ENVIRONMENT = "production"
    ids = sorted(m.id for m in run_checks(tags=[PRODUCTION_TAG], include_deployment_checks=True))
    assert ids == ["portal.E110", "portal.E111", "portal.E112"]
    assert all(m.level == ERROR for m in run_checks(tags=[PRODUCTION_TAG], include_deployment_checks=True))


# --- bootstrap_demo: the published demo password only in development ------------------------


def test_bootstrap_demo_refuses_to_run_outside_development(settings, db):
    from django.contrib.auth import get_user_model

    settings.ENVIRONMENT = "production"
    with pytest.raises(CommandError, match="runs only with PORTAL_ENVIRONMENT=development"):
        call_command("bootstrap_demo")
    assert not get_user_model().objects.exists()


def test_bootstrap_demo_in_production_exits_non_zero_with_one_line(tmp_path):
    result = run(tmp_path, "manage.py", "bootstrap_demo")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "bootstrap_demo runs only with PORTAL_ENVIRONMENT=development (this is production)" in lines[0]


# --- Bounded database connections ----------------------------------------------------------


def _database_settings(tmp_path: Path, **variables: str) -> str:
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "d = settings.DATABASES['default']; print(d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'])"
    )
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_") and k != "DATABASE_URL"}
    env = {**inherited, "DJANGO_SETTINGS_MODULE": "portal.settings", "PORTAL_DATA_DIR": str(tmp_path), **variables}
    return run_python(["-c", script], cwd=ROOT, env=env, check=True).stdout.strip()


def test_database_connections_are_bounded(tmp_path):
    # runserver starts a thread per request: a kept connection per thread would pile up.
    assert _database_settings(tmp_path) == "0 True"
    assert _database_settings(tmp_path, DATABASE_URL="postgres://u@127.0.0.1:5432/x") == "0 True"
    assert _database_settings(tmp_path, PORTAL_DB_CONN_MAX_AGE="60") == "60 True"


@pytest.mark.parametrize("age", [-1, 3601])
def test_an_unbounded_connection_age_is_a_system_check_error(settings, age):
    from portal.checks import SETTINGS_TAG

    settings.PORTAL_DB_CONN_MAX_AGE = age
    assert [m.id for m in run_checks(tags=[SETTINGS_TAG])] == ["portal.E116"]
