"""Fixtures of the mail tests: the shared key recovery agent (tests/recovery_testing.py), logged-in clients."""

from __future__ import annotations

import pytest
from django.test import Client
from portal_testing import PASSWORD
from recovery_testing import agent_p12, agent_user  # noqa: F401 - shared fixtures


@pytest.fixture
def client_of(db):
    """A logged-in test client for a user: client_of(alice).get(path)."""

    def make(user) -> Client:
        client = Client()
        assert client.login(username=user.get_username(), password=PASSWORD)
        return client

    return make
