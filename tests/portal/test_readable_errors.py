"""The demo says what is wrong in one line and leaves nothing behind; `make clean-demo` resets it.

bootstrap_demo checks PORTAL_DEMO_PASSWORD with the accounts' own password validators before it
creates anything (a short one was a traceback after "Created demo account …" lines that had
been rolled back, with the CA key files left on disk); reset_demo (`make clean-demo`) removes
the development defaults only.
"""

from __future__ import annotations

import os
import stat
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils.html import escape
from python_forkserver import run_python

ROOT = Path(__file__).resolve().parents[2]


def _development_environment(data_dir: Path, **overrides: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_") and k != "DATABASE_URL"}
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_DATA_DIR": str(data_dir),
        # Not the placeholder: its system check warning (portal.W001) would be more lines on stderr.
        "PORTAL_BASE_URL": "http://pki.acme-corp.test",
        **overrides,
    }


def _manage(data_dir: Path, *arguments: str, **overrides: str) -> subprocess.CompletedProcess:
    return run_python(
        ["manage.py", *arguments],
        cwd=ROOT,
        env=_development_environment(data_dir, **overrides),
    )


def _files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()} if root.exists() else set()


@pytest.fixture
def demo_dirs(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.PORTAL_CA_KEY_DIR = tmp_path / "data" / "ca"
    return settings.DATA_DIR


@pytest.fixture
def quick_demo_ca(monkeypatch):
    """The demo's CA with an EC key: the same path as RSA-4096, seconds quicker."""
    from enrollment.management.commands import bootstrap_demo

    real = bootstrap_demo.ca_create
    monkeypatch.setattr(bootstrap_demo, "ca_create", lambda **kwargs: real(**{**kwargs, "key_type": "ec-p256"}))


# --- bootstrap_demo: the password first -----------------------------------------------------


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "too short"),
        ("12345678901234", "entirely numeric"),
        ("password123456", "too common"),
        ("alice@example.org", "too similar"),  # to alice's mailbox: the validators see each account
    ],
)
def test_a_password_the_accounts_would_refuse_is_refused_before_anything_is_created(
    db, settings, demo_dirs, capsys, password, reason
):
    from django.contrib.auth import get_user_model

    from enrollment.models import CertificateAuthority

    settings.PORTAL_DEMO_PASSWORD = password
    with pytest.raises(CommandError, match=f"PORTAL_DEMO_PASSWORD is refused, nothing was created: .*{reason}"):
        call_command("bootstrap_demo")
    assert capsys.readouterr().out == ""
    assert not get_user_model().objects.exists()
    assert not CertificateAuthority.objects.exists()
    assert _files(demo_dirs) == set()


def test_a_failure_after_the_ca_keys_were_written_keeps_no_file_and_tells_no_rolled_back_account(
    db, settings, demo_dirs, quick_demo_ca, monkeypatch, capsys
):
    from django.contrib.auth import get_user_model

    from enrollment.management.commands import bootstrap_demo
    from enrollment.models import CertificateAuthority

    settings.PORTAL_DEMO_PASSWORD = "correct-horse-battery"
    written = []

    def failing_agent(**kwargs):
        written.extend(_files(demo_dirs))  # the CA keys are on disk by now
        raise ValidationError({"name": "the agent's certificate could not be made"})

    monkeypatch.setattr(bootstrap_demo, "key_recovery_agent_create", failing_agent)
    with pytest.raises(CommandError, match="The demo was not created, nothing was kept: the agent's certificate"):
        call_command("bootstrap_demo")
    assert any(name.startswith("ca/") and name.endswith(".key.pem") for name in written)
    assert _files(demo_dirs) == set()
    assert not (demo_dirs / "ca").exists()
    assert capsys.readouterr().out == ""
    assert not get_user_model().objects.exists()
    assert not CertificateAuthority.objects.exists()


def test_the_demo_bootstraps_and_tells_what_it_created(db, settings, demo_dirs, quick_demo_ca, capsys):
    settings.PORTAL_DEMO_PASSWORD = "correct-horse-battery"
    call_command("bootstrap_demo")
    out = capsys.readouterr().out
    assert "Created demo CA" in out and "Created demo account alice" in out and "kra-agent.p12" in out
    p12 = demo_dirs / "demo" / "kra-agent.p12"
    assert stat.S_IMODE(p12.stat().st_mode) == 0o600
    call_command("bootstrap_demo")  # keeps the data, says nothing new
    assert capsys.readouterr().out == ""


def test_a_short_demo_password_is_one_line_on_stderr_and_no_file(tmp_path):
    data_dir = tmp_path / "data"
    result = _manage(data_dir, "bootstrap_demo", PORTAL_DEMO_PASSWORD="short")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "PORTAL_DEMO_PASSWORD is refused, nothing was created: This password is too short" in lines[0]
    assert "Created" not in result.stdout
    # Only the generated development secrets, which any command's settings make.
    assert {name.split("/")[0] for name in _files(data_dir)} <= {"dev-secrets"}


# --- reset_demo / make clean-demo -------------------------------------------------------------

DEMO_FILES = {
    "portal.sqlite3",
    "portal.sqlite3-wal",
    "ca/issuing-ca-1234.key.pem",
    "ca/ocsp/issuing-ca/1.key.pem",
    "audit-anchors.jsonl",
    "demo/kra-agent.p12",
}


def _a_demo(data_dir: Path) -> None:
    for name in [*DEMO_FILES, "notes.txt"]:
        (data_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (data_dir / name).write_text("x")


def test_make_clean_demo_runs_reset_demo():
    result = subprocess.run(["make", "-n", "clean-demo"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "manage.py reset_demo" in result.stdout


def test_reset_demo_removes_the_demo_and_nothing_else(tmp_path):
    data_dir = tmp_path / "data"
    _a_demo(data_dir)
    result = _manage(data_dir, "reset_demo")
    assert result.returncode == 0, result.stderr
    assert "`make run` bootstraps a new demo" in result.stdout
    left = _files(data_dir)
    assert left & DEMO_FILES == set()
    assert "notes.txt" in left and any(name.startswith("dev-secrets/") for name in left)
    assert not (data_dir / "ca").exists() and not (data_dir / "demo").exists()

    again = _manage(data_dir, "reset_demo")
    assert again.returncode == 0 and "nothing to remove" in again.stdout


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/portal"}, "this portal uses postgresql portal"),
        ({"PORTAL_CA_KEY_DIR": "/srv/ca-keys"}, "PORTAL_CA_KEY_DIR is /srv/ca-keys, not the demo's"),
    ],
)
def test_reset_demo_refuses_what_is_not_the_development_default(tmp_path, overrides, message):
    data_dir = tmp_path / "data"
    _a_demo(data_dir)
    result = _manage(data_dir, "reset_demo", **overrides)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert message in result.stderr and "nothing was removed" in result.stderr
    assert DEMO_FILES <= _files(data_dir)


def test_reset_demo_refuses_production(settings, demo_dirs):
    _a_demo(demo_dirs)
    settings.ENVIRONMENT = "production"
    with pytest.raises(CommandError, match="runs only with PORTAL_ENVIRONMENT=development"):
        call_command("reset_demo")
    assert DEMO_FILES <= _files(demo_dirs)


# --- Invalid filter values: an error and nothing listed, never everything ----------------------

AUDIT_LIST = "/admin/audit/auditevent/"


@pytest.fixture
def audit_events(db, auditor):
    from audit.events import AuditAction
    from audit.services import audit_record

    return [audit_record(action=AuditAction.AUDIT_EXPORTED, actor=auditor, details={"n": n}) for n in range(3)]


def _errors(response) -> list[str]:
    from django.contrib.messages import ERROR

    return [str(m) for m in response.context["messages"] if m.level == ERROR]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            {"timestamp__gte": "garbage"},
            "Nothing is listed: the filter timestamp__gte='garbage' is invalid: “garbage” value has an invalid format.",
        ),
        ({"since": "garbage"}, "Nothing is listed: the filter since='garbage' is invalid: 'garbage' is not a date"),
        ({"until": "2026-02-30"}, "the filter until='2026-02-30' is invalid: '2026-02-30' is not a date"),
        (
            {"since": "2026-11-05", "until": "2026-11-01"},
            "the filter since='2026-11-05', until='2026-11-01' is invalid: the start date is after the end date.",
        ),
        ({"timestamp__year": "abc"}, "the date timestamp__year='abc' is invalid: the year, month and day are numbers."),
        ({"timestamp__year": "2026", "timestamp__month": "13"}, "is invalid: month must be in 1..12"),
        ({"actor__id__exact": "abc"}, "Field 'id' expected a number but got 'abc'."),
    ],
)
def test_a_bad_audit_log_filter_is_an_error_above_an_empty_list(client, auditor, audit_events, query, message):
    client.force_login(auditor)
    response = client.get(AUDIT_LIST, query)
    assert response.status_code == 400  # no redirect to the unfiltered list (Django's ?e=1)
    assert response.context["cl"].result_count == 0
    errors = _errors(response)
    assert len(errors) == 1 and message in errors[0], errors
    assert escape(errors[0]) in response.content.decode()  # shown on the page, as a banner
    # The export refuses it too, with the same words (never an export of everything or of nothing).
    export = client.get(f"{AUDIT_LIST}export.csv", query)
    assert export.status_code == 400 and message in export.content.decode()


def test_good_audit_log_filters_still_filter(client, auditor, audit_events):
    client.force_login(auditor)
    day = audit_events[0].timestamp.date()
    everything = client.get(AUDIT_LIST).context["cl"].result_count
    response = client.get(AUDIT_LIST, {"since": day.isoformat(), "until": day.isoformat()})
    assert response.status_code == 200 and response.context["cl"].result_count == everything >= 3
    assert _errors(response) == []
    tomorrow = client.get(AUDIT_LIST, {"since": (day + timedelta(days=1)).isoformat()})
    assert tomorrow.status_code == 200 and tomorrow.context["cl"].result_count == 0 and _errors(tomorrow) == []
    assert client.get(AUDIT_LIST, {"until": "9999-12-31"}).status_code == 200  # was an OverflowError (500)


def test_a_page_past_the_last_shows_the_first_and_says_so(client, auditor, audit_events, monkeypatch):
    from audit.admin import AuditEventAdmin

    monkeypatch.setattr(AuditEventAdmin, "list_per_page", 2)
    client.force_login(auditor)
    response = client.get(AUDIT_LIST, {"p": "7"})
    assert response.status_code == 200 and len(response.context["cl"].result_list) == 2
    assert _errors(response) == ["There is no page 7 in this list: the first page is shown."]


def test_other_admin_date_filters_say_so_too(pki, client, make_user):
    make_user("root", superuser=True, employee=False)
    client.force_login(get_user("root"))
    for url in ("/admin/escrow/recoveryrequest/", "/admin/enrollment/certificate/"):
        field = "created_at" if "recovery" in url else "not_after"
        response = client.get(url, {f"{field}__gte": "31.12.2026"})
        assert response.status_code == 400, (url, response.status_code)
        assert _errors(response) and _errors(response)[0].startswith("Nothing is listed:"), _errors(response)


def get_user(username: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


@pytest.mark.parametrize("query", [{"timestamp__gte": "2026-01-01"}, {"from": "2026-01-01"}, {"sinse": "garbage"}])
def test_the_audit_api_refuses_a_filter_it_does_not_have(client, auditor, audit_events, query):
    client.force_login(auditor)
    for url in ("/api/v1/audit-events/", "/api/v1/audit-events.csv"):
        response = client.get(url, query)
        assert response.status_code == 400, (url, response.content)
        error = response.json()["error"]
        assert error["code"] == "invalid" and list(error["fields"]) == list(query)
        assert "Not a filter of the audit log; its filters are action, actor" in error["message"]
    assert client.get("/api/v1/audit-events/", {"page": 1, "page_size": 2, "format": "json"}).status_code == 200
    assert client.get("/api/v1/audit-events/", {"since": "garbage"}).status_code == 400  # as before


def test_the_audit_api_tells_strangers_no_parameter_names(client, audit_events):
    response = client.get("/api/v1/audit-events/", {"from": "2026-01-01"})
    assert response.status_code in (401, 403)
    assert "Not a filter" not in response.content.decode()
