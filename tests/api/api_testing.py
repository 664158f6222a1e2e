"""Helpers for the API tests (a module of its own: `conftest` names several files)."""

from __future__ import annotations

import base64

from portal_testing import PASSWORD
from rest_framework.test import APIClient


def basic_client(user=None) -> APIClient:
    """An API client that logs in with HTTP Basic as `user`, or an anonymous one."""
    client = APIClient()
    if user is not None:
        credentials = base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()
        client.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}")
    return client


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client
