"""The example systemd units (deploy/systemd/): each parses, runs the right program, and is hardened.

`systemd-analyze verify` judges them where it is installed (it is no component the portal
needs, so its absence skips that test, in CI too); the directives are checked either way.
"""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
PROGRAMS = {
    "portal-web.service": ["gunicorn", "--config", "/opt/smime-portal/portal/gunicorn_conf.py"],
    "portal-worker.service": ["celery", "--app", "portal", "worker"],
    "portal-beat.service": ["celery", "--app", "portal", "beat"],
}
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ReadWritePaths": "/var/lib/smime-portal",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "RestrictSUIDSGID": "yes",
    "UMask": "0077",
    "SystemCallFilter": "@system-service",
}


def unit(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read(UNITS / name)
    return parser["Service"]


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_each_unit_runs_its_program_as_the_portal_user_with_the_environment_file(name):
    service = unit(name)

    command = shlex.split(service["ExecStart"])
    assert command[0] == f"/opt/smime-portal/.venv/bin/{PROGRAMS[name][0]}"
    assert command[1 : len(PROGRAMS[name])] == PROGRAMS[name][1:]
    assert service["User"] == "smime-portal" and service["Group"] == "smime-portal"
    assert service["EnvironmentFile"] == "/etc/smime-portal/portal.env"
    assert service["WorkingDirectory"] == "/opt/smime-portal"
    assert service["Restart"] == "on-failure"


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_each_unit_is_hardened(name):
    service = unit(name)

    assert {key: service.get(key) for key in HARDENING} == HARDENING


def test_beat_keeps_its_schedule_in_the_data_directory():
    command = shlex.split(unit("portal-beat.service")["ExecStart"])

    assert command[command.index("--schedule") + 1].startswith("/var/lib/smime-portal/")


def test_the_environment_example_names_secrets_by_file_only():
    lines = [
        line.lstrip("#").strip()
        for line in (ROOT / "deploy" / "portal.env.example").read_text().splitlines()
        if "=" in line and not line.startswith("# ")
    ]
    settings = dict(line.split("=", 1) for line in lines)
    secrets = ("SECRET_KEY", "PASSPHRASE", "KEK", "_KEY", "PASSWORD", "PIN")
    named = [name for name in settings if any(part in name for part in secrets)]
    assert named and all(name.endswith("_FILE") for name in named), named
    assert settings["PORTAL_ENVIRONMENT"] == "production"
    assert settings["PORTAL_DATA_DIR"] == "/var/lib/smime-portal"


def test_systemd_analyze_verifies_the_units(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (the units are still checked above)")
    # The install prefix replaced by this checkout and its virtualenv, so that verify finds the programs.
    for source in sorted(UNITS.glob("*.service")):
        text = source.read_text().replace("/opt/smime-portal/.venv/bin", str(Path(sys.executable).parent))
        (tmp_path / source.name).write_text(text.replace("/opt/smime-portal", str(ROOT)))

    done = subprocess.run(
        [analyze, "verify", *sorted(str(path) for path in tmp_path.glob("*.service"))],
        capture_output=True,
        text=True,
        timeout=120,
    )

    # verify exits 0 on a directive it ignores; any word from it is a problem.
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stdout + done.stderr
