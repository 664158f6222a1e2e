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
