"""Fixtures of the mail tests: a key recovery agent's account and credential, logged-in clients."""

from __future__ import annotations

import pytest
from django.test import Client
from mail_testing import AGENT_PASSPHRASE
from portal_testing import PASSWORD


@pytest.fixture
def agent_user(make_user):
    from enrollment.roles import KEY_RECOVERY_AGENTS

    return make_user("agent", groups=[KEY_RECOVERY_AGENTS], given_name="Kim", surname="Agent")


@pytest.fixture
def pki_admin(make_user):
    from enrollment.roles import PKI_ADMINISTRATORS

    return make_user("pkiadmin", groups=[PKI_ADMINISTRATORS], given_name="Petra", surname="Admin")


@pytest.fixture
def agent_p12(pki) -> bytes:
    from enrollment.pki.pkcs12 import pkcs12_bundle

    material = pki["material"]
    return pkcs12_bundle(
        key=material.kra_key, certificate=material.kra, chain=[], friendly_name="agent", passphrase=AGENT_PASSPHRASE
    )


@pytest.fixture
def client_of(db):
    """A logged-in test client for a user: client_of(alice).get(path)."""

    def make(user) -> Client:
        client = Client()
        assert client.login(username=user.get_username(), password=PASSWORD)
        return client

    return make
