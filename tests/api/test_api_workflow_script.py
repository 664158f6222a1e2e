"""A script runs request → approve → download → revoke → recovery against a live server, API only.

The script (api_workflow_script.py beside this file) uses the standard library and API
tokens; the results are checked with the real openssl.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from portal_testing import PASSWORD, require_tool

SCRIPT = Path(__file__).with_name("api_workflow_script.py")


AGENT_PASSPHRASE = "the agent's own passphrase"


@pytest.fixture
def agent(make_user, pki, tmp_path):
    """A key recovery agent's account and the PKCS#12 the agent holds (outside the portal)."""
    from enrollment.pki.pkcs12 import pkcs12_bundle
    from enrollment.roles import KEY_RECOVERY_AGENTS

    user = make_user("agent", groups=[KEY_RECOVERY_AGENTS], given_name="Kim", surname="Agent")
    material = pki["material"]
    path = tmp_path / "agent.p12"
    path.write_bytes(
        pkcs12_bundle(
            key=material.kra_key, certificate=material.kra, chain=[], friendly_name="Test Key Recovery Agent",
            passphrase=AGENT_PASSPHRASE,
        )
    )
    return user, path


def test_a_script_runs_a_certificates_life_through_the_api(
    live_server, pki, alice, approver, approver2, agent, tmp_path, settings
):
    openssl = require_tool("openssl")
    agent_user, agent_p12 = agent

    result = subprocess.run(
        [
            sys.executable, str(SCRIPT), live_server.url, str(tmp_path),
            f"alice:{PASSWORD}", f"approver:{PASSWORD}", f"approver2:{PASSWORD}", f"agent:{PASSWORD}",
            str(agent_p12), AGENT_PASSPHRASE,
        ],
        capture_output=True, text=True, timeout=240,
    )

    assert result.returncode == 0, result.stderr + result.stdout
    summary = json.loads(result.stdout)
    assert summary["status"] == "revoked" and summary["revocation_reason"] == "key_compromise"
    assert summary["recovery"]["after_approvals"] == "approved" and summary["recovery"]["status"] == "completed"
    assert summary["after_token_revoked"] == "This token has been revoked."
    serial = summary["serial"]

    # The bundle opens with the passphrase and holds the certificate the API named.
    certificate = subprocess.run(
        [openssl, "pkcs12", "-in", str(tmp_path / "employee.p12"), "-passin", f"pass:{summary['passphrase']}",
         "-nokeys", "-clcerts"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    serial_line = subprocess.run(
        [openssl, "x509", "-noout", "-serial"], input=certificate, capture_output=True, text=True, check=True
    ).stdout
    assert int(serial_line.strip().split("=", 1)[1], 16) == int(serial, 16)
    # The chain verifies it (for S/MIME), and the new CRL lists it.
    verified = subprocess.run(
        [openssl, "verify", "-purpose", "smimesign", "-CAfile", str(tmp_path / "chain.pem"), str(tmp_path / "employee.pem")],
        capture_output=True, text=True, timeout=60,
    )
    assert verified.returncode == 0 and ": OK" in verified.stdout, verified.stdout + verified.stderr
    crl = subprocess.run(
        [openssl, "crl", "-inform", "DER", "-in", str(tmp_path / "issuing-ca.crl"), "-noout", "-text"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert serial.upper().lstrip("0") in crl.replace(":", "").upper()

    # The recovered key is the certificate's key.
    def public_key_of(command: list[str]) -> str:
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout

    recovered_key = subprocess.run(
        [openssl, "pkcs12", "-in", str(tmp_path / "recovered.p12"), "-passin", f"pass:{summary['passphrase']}",
         "-nocerts", "-nodes"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    from_key = subprocess.run(
        [openssl, "pkey", "-pubout"], input=recovered_key, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    from_certificate = public_key_of([openssl, "x509", "-in", str(tmp_path / "employee.pem"), "-noout", "-pubkey"])
    assert from_key == from_certificate and "PUBLIC KEY" in from_key
