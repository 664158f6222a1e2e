"""The audit log's source address: X-Forwarded-For only from the proxies in PORTAL_TRUSTED_PROXIES."""

from __future__ import annotations

import pytest
from django.test import Client
from portal_testing import PASSWORD

from audit.middleware import client_address


@pytest.mark.parametrize(
    "proxies, remote, forwarded, expected",
    [
        ([], "198.51.100.7", "203.0.113.9", "198.51.100.7"),  # no proxy configured: the header is a client's claim
        (["10.0.0.1"], "198.51.100.7", "203.0.113.9", "198.51.100.7"),  # not from the proxy: ignored
        (["10.0.0.1"], "10.0.0.1", "203.0.113.9", "203.0.113.9"),
        (["10.0.0.1"], "10.0.0.1", "", "10.0.0.1"),  # the proxy sent none: the proxy is all we know
        # A client's own X-Forwarded-For is at the left: the proxy appended the real address.
        (["10.0.0.1"], "10.0.0.1", "1.2.3.4, 203.0.113.9", "203.0.113.9"),
        # Two proxies, both trusted (a network): skip them from the right.
        (["10.0.0.0/24"], "10.0.0.1", "1.2.3.4, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
        (["10.0.0.1"], "10.0.0.1", "junk", "10.0.0.1"),
        (["10.0.0.1"], "10.0.0.1", "203.0.113.9:51234", "203.0.113.9"),
        (["::1"], "::1", "[2001:db8::5]:443", "2001:db8::5"),
        (["10.0.0.1", "bogus"], "10.0.0.1", "203.0.113.9", "203.0.113.9"),  # portal.E115 names "bogus"
    ],
)
def test_client_address(settings, proxies, remote, forwarded, expected):
    settings.PORTAL_TRUSTED_PROXIES = proxies
    meta = {"REMOTE_ADDR": remote, **({"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {})}
    assert client_address(meta) == expected


def _failed_login_source(**client_kwargs) -> str | None:
    from audit.events import AuditAction
    from audit.models import AuditEvent

    Client(**client_kwargs).post(
        "/login/", {"username": "alice", "password": PASSWORD + "-wrong"},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    return AuditEvent.objects.filter(action=AuditAction.AUTH_LOGIN_FAILED).order_by("-id").values_list(
        "source_ip", flat=True
    ).first()


def test_the_audit_log_records_the_client_behind_a_trusted_proxy_only(settings, alice):
    assert _failed_login_source(REMOTE_ADDR="10.0.0.1") == "10.0.0.1"  # no proxy configured
    settings.PORTAL_TRUSTED_PROXIES = ["10.0.0.1"]
    assert _failed_login_source(REMOTE_ADDR="10.0.0.1") == "203.0.113.9"
    assert _failed_login_source(REMOTE_ADDR="198.51.100.7") == "198.51.100.7"  # a forged header, ignored
