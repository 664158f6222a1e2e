"""Fixtures for the API tests: the sixth role (PKI administrator), clients per role, quick issuance."""

from __future__ import annotations

import pytest


@pytest.fixture
def pki_admin(make_user):
    from enrollment.roles import PKI_ADMINISTRATORS

    return make_user("pkiadmin", groups=[PKI_ADMINISTRATORS], given_name="Pat", surname="Administrator")


@pytest.fixture
def issue():
    """Issue a certificate for `user` (ECDSA P-256: quick), approved by `approver`."""

    def issue_for(user, approver, *, key_type="ec-p256", certificate_type="sponsor-strict"):
        from enrollment.services.requests import certificate_request_approve, certificate_request_create

        request = certificate_request_create(
            employee=user.employee, submitted_by=user, key_type=key_type, certificate_type=certificate_type
        )
        request = certificate_request_approve(request_id=request.pk, approver=approver)
        assert request.state == "issued", request.reason
        return request.certificate

    return issue_for


@pytest.fixture
def wsgi_app():
    """Django's WSGI handler, kept on the test transaction (it would close the connection per request).

    close_old_connections is disconnected before each request, not only once: Django's test
    client (the APIClient in _schema()) connects it again after each of its own requests, and
    it closes a connection outside autocommit, so on PostgreSQL the test's (SQLite in memory
    ignores close()).
    """
    from django.core import signals
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import close_old_connections

    handler = WSGIHandler()

    def app(environ, start_response):
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        return handler(environ, start_response)

    try:
        yield app
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
