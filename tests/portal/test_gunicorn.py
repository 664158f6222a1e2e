"""The production server: real gunicorn, started as deploy/systemd/portal-web.service starts it.

A fresh data directory with the embedded SQLite database, production settings with *_FILE
secrets (as deploy/portal.env.example has them), a CA, then gunicorn on a free loopback port:
the log-in page answers behind a trusted proxy, plain http is redirected except the CA
certificate under /pki/, and X-Forwarded-Proto counts only from PORTAL_TRUSTED_PROXIES.
"""

from __future__ import annotations

import configparser
import http.client
import os
import runpy
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from python_forkserver import run_python

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "portal-web.service"
SECRETS = (
    "PORTAL_SECRET_KEY",
    "PORTAL_CA_PASSPHRASE",
    "PORTAL_PICKUP_KEK",
    "PORTAL_AUDIT_CHAIN_KEY",
    "PORTAL_AUDIT_ANCHOR_KEY",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _unit_command(unit: Path) -> list[str]:
    """The unit's ExecStart with the install prefix /opt/smime-portal replaced by this checkout."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(unit)
    command = shlex.split(parser["Service"]["ExecStart"])
    return [part.replace("/opt/smime-portal", str(ROOT)) for part in command]


@pytest.fixture(scope="module")
def production_environment(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("gunicorn")
    data = base / "data"
    data.mkdir(mode=0o700)
    secrets_dir = base / "secrets"
    secrets_dir.mkdir(mode=0o700)
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PORTAL_", "DJANGO_", "DATABASE_URL", "GUNICORN_", "FORWARDED_ALLOW_IPS"))
    }
    for name in SECRETS:
        path = secrets_dir / name.lower()
        path.write_text(os.urandom(33).hex() + "\n")
        path.chmod(0o600)
        environment[f"{name}_FILE"] = str(path)
    environment.update(
        {
            "DATABASE_URL": "",  # the embedded SQLite, in the data directory
            "PORTAL_ENVIRONMENT": "production",
            "PORTAL_DATA_DIR": str(data),
            "PORTAL_ALLOWED_HOSTS": "127.0.0.1",
            "PORTAL_BASE_URL": "http://pki.northwind-traders.com",
            "PORTAL_ORGANIZATION_NAME": "Northwind Traders",
            "PORTAL_ORGANIZATION_IDENTIFIER": "NTRUS+CA-7654321",
            "PORTAL_TRUSTED_PROXIES": "127.0.0.1",
        }
    )
    for arguments in (["migrate", "--noinput", "-v0"], ["init_ca", "--key-type", "ec-p256", "--single-tier"]):
        done = run_python([str(ROOT / "manage.py"), *arguments], cwd=ROOT, env=environment)
        assert done.returncode == 0, done.stdout + done.stderr
    return environment


@pytest.fixture
def gunicorn(production_environment, tmp_path):
    """gunicorn as the unit starts it; stopped (SIGTERM, as systemd stops it) when the test is done."""
    port = _free_port()
    command = _unit_command(UNIT)
    command[0] = str(Path(sys.executable).with_name("gunicorn"))  # this virtualenv's gunicorn
    log = tmp_path / "gunicorn.log"
    environment = {
        **production_environment,
        "PORTAL_WEB_BIND": f"127.0.0.1:{port}",
        "PORTAL_WEB_WORKERS": "1",
        "PORTAL_WEB_THREADS": "2",
    }
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, f"gunicorn exited with {process.returncode}:\n{log.read_text()}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"gunicorn did not listen within 90 s:\n{log.read_text()}"
                time.sleep(0.3)
        yield {"port": port, "log": log, "process": process}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def fetch(server, path: str, *, headers=None, source: str = "127.0.0.1") -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=30, source_address=(source, 0))
    connection.request("GET", path, headers={"Host": "127.0.0.1", **(headers or {})})
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


def test_gunicorn_serves_the_portal_as_the_systemd_unit_starts_it(gunicorn):
    # The log-in page, behind the trusted proxy (PORTAL_TRUSTED_PROXIES=127.0.0.1) that terminates TLS.
    page = fetch(gunicorn, "/login/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"})
    assert page.status == 200, page.body[:500]
    assert b'name="password"' in page.body and page.getheader("Strict-Transport-Security")

    # Plain http is redirected to https ...
    plain = fetch(gunicorn, "/login/")
    assert plain.status == 301 and plain.getheader("Location") == "https://127.0.0.1/login/"
    # ... and 127.0.0.2 is no trusted proxy: its X-Forwarded-Proto counts neither for gunicorn nor for Django.
    claimed = fetch(gunicorn, "/login/", headers={"X-Forwarded-Proto": "https"}, source="127.0.0.2")
    assert claimed.status == 301

    # What relying parties fetch over plain http (SBR 7.1.2.3): the CA certificate, the health path.
    ca = fetch(gunicorn, "/pki/issuing-ca.crt?token=not-for-the-log")
    assert ca.status == 200 and ca.getheader("Content-Type") == "application/pkix-cert"
    assert "Northwind Traders" in x509.load_der_x509_certificate(ca.body).subject.rfc4514_string()

    # systemd stops the service with SIGTERM: gunicorn finishes and exits 0.
    process = gunicorn["process"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=40) == 0

    # The access log: each request, without its query string.
    log = gunicorn["log"].read_text()
    assert '"GET /pki/issuing-ca.crt HTTP/1.1" 200' in log and '"GET /login/ HTTP/1.1" 301' in log
    assert "not-for-the-log" not in log
    assert "Using worker: gthread" in log


def _configuration(monkeypatch, **environment) -> dict:
    for name in ("PORTAL_TRUSTED_PROXIES", "PORTAL_WEB_BIND", "PORTAL_WEB_WORKERS", "PORTAL_WEB_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "portal" / "gunicorn_conf.py"))


def test_the_configuration_trusts_the_portals_proxies_only(monkeypatch):
    default = _configuration(monkeypatch)
    assert default["forwarded_allow_ips"] == ""  # not gunicorn's own default, 127.0.0.1
    assert default["bind"] == ["127.0.0.1:8000"] and default["threads"] == 4 and 1 <= default["workers"] <= 8
    assert default["worker_class"] == "gthread" and default["control_socket_disable"] is True
    assert "%(r)s" not in default["access_log_format"] and "%(q)s" not in default["access_log_format"]
    assert "%(f)s" not in default["access_log_format"] and "{authorization}" not in default["access_log_format"]

    proxies = _configuration(monkeypatch, PORTAL_TRUSTED_PROXIES="127.0.0.1, 10.0.8.1/24, not-an-address")
    assert proxies["forwarded_allow_ips"] == "127.0.0.1/32,10.0.8.0/24"

    sized = _configuration(monkeypatch, PORTAL_WEB_WORKERS="3", PORTAL_WEB_THREADS="1")
    assert (sized["workers"], sized["worker_class"]) == (3, "sync")
