"""The key recovery agent the recovery and mail tests share: its account, its PKCS#12 and its
passphrase (tests/escrow, tests/notifications; the PKI administrator who asks is tests/conftest.py's pki_admin)."""

from __future__ import annotations

import pytest

AGENT_PASSPHRASE = "agent-passphrase-7Qx!not-in-the-db"


@pytest.fixture
def agent_user(make_user):
    from enrollment.roles import KEY_RECOVERY_AGENTS

    return make_user("agent", groups=[KEY_RECOVERY_AGENTS], given_name="Kim", surname="Agent")




@pytest.fixture
def agent_p12(pki) -> bytes:
    """The test agent's certificate and key as the PKCS#12 an agent would hold."""
    from enrollment.pki.pkcs12 import pkcs12_bundle

    material = pki["material"]
    return pkcs12_bundle(
        key=material.kra_key, certificate=material.kra, chain=[], friendly_name="Test Key Recovery Agent",
        passphrase=AGENT_PASSPHRASE,
    )
