"""Odd characters in addresses, filters and forms are a 4xx, never a 500 (PostgreSQL refuses NUL in text)."""

from __future__ import annotations

import pytest
from django.test import Client

NUL = "%00"
# Each of these reached a PostgreSQL query with the NUL and failed there as a 500.
NUL_ADDRESSES = [
    f"/certificates/{NUL}/pkcs12/",
    f"/certificates/{NUL}.pem",
    f"/admin/audit/auditevent/?action={NUL}",
    f"/admin/enrollment/certificate/?status={NUL}",
    f"/admin/enrollment/certificate/?q={NUL}",
    f"/recovery/1/pkcs12/{NUL}/",
    f"/pki/{NUL}.crl",
    f"/ocsp/issuing/{NUL}",
]
API_NUL_ADDRESSES = [
    f"/api/v1/certificates/{NUL}/",
    f"/api/v1/certificates/?mailbox={NUL}",
    f"/api/v1/audit-events/?actor={NUL}",
    f"/api/v1/requests/?{NUL}=1",
]
OTHER_ODD_ADDRESSES = [
    "/certificates/%ff/pkcs12/",
    "/certificates/%ff.pem",
    "/admin/enrollment/certificate/?status=%ff",
    "/admin/audit/auditevent/?action=%ff%fe",
    "/admin/audit/auditevent/?timestamp__gte=%ff",
    "/admin/enrollment/certificate/?not_after__gte=9999999-1-1",
    "/admin/enrollment/certificate/?issuer__id__exact=99999999999999999999999",
    "/api/v1/certificates/%ff/",
    "/api/v1/audit-events/?actor=%ff",
]
FORMS_WITH_NUL = [
    ("/login/", {"username": "alice\x00", "password": "x\x00"}),
    ("/request/", {"key_type": "\x00", "certificate_type": "\x00"}),
    ("/certificates/{serial}/pkcs12/", {"passphrase": "abc\x00defghijklmn", "passphrase2": "abc\x00defghijklmn", "format": "modern"}),
    ("/certificates/{serial}/revoke/", {"reason": "\x00", "confirm": "\x00"}),
    ("/recovery/request/", {"serial": "\x00", "reason": "\x00"}),
    ("/tokens/", {"name": "\x00", "expires_in_days": "30", "submission": "\x00"}),
    ("/api/v1/requests/", {"key_type": "\x00", "employee": "\x00"}),
    ("/api/v1/recoveries/", {"certificate": "\x00", "reason": "x", "recipient": "\x00"}),
    ("/api/v1/tokens/", {"name": "\x00"}),
    ("/api/v1/certificates/{serial}/revoke/", {"reason": "\x00"}),
]


@pytest.fixture
def superuser_client(make_user):
    client = Client()
    client.force_login(make_user("root", superuser=True))
    return client


def test_a_nul_in_an_address_is_a_400_that_says_so(pki, issued, superuser_client):
    answers = {url: superuser_client.get(url) for url in NUL_ADDRESSES}

    assert {url: r.status_code for url, r in answers.items()} == {url: 400 for url in NUL_ADDRESSES}
    assert all(b"NUL character" in r.content for r in answers.values())


def test_a_nul_in_an_api_address_is_a_json_400(pki, issued, superuser_client):
    for url in API_NUL_ADDRESSES:
        response = superuser_client.get(url)
        assert response.status_code == 400, url
        assert response.json()["error"]["code"] == "invalid" and "NUL character" in response.json()["error"]["message"]
    # A query parameter is named, as the API's own validation names fields.
    named = {url: list(superuser_client.get(url).json()["error"]["fields"]) for url in API_NUL_ADDRESSES}
    assert named == {
        f"/api/v1/certificates/{NUL}/": [],
        f"/api/v1/certificates/?mailbox={NUL}": ["mailbox"],
        f"/api/v1/audit-events/?actor={NUL}": ["actor"],
        f"/api/v1/requests/?{NUL}=1": ["\\x00"],
    }


def test_other_odd_addresses_are_answered_without_a_server_error(pki, issued, superuser_client):
    statuses = {url: superuser_client.get(url).status_code for url in OTHER_ODD_ADDRESSES}
    assert {url: status for url, status in statuses.items() if status >= 500} == {}
    assert statuses["/api/v1/certificates/%ff/"] == 404


def test_forms_refuse_nul_characters_and_change_nothing(pki, issued):
    from enrollment.models import Certificate, CertificateRequest
    from escrow.models import RecoveryRequest
    from portal.models import ApiToken

    client = Client()
    client.force_login(issued.employee.user)
    statuses = {}
    for url, data in FORMS_WITH_NUL:
        statuses[url] = client.post(url.format(serial=issued.serial), data).status_code
    assert {url: status for url, status in statuses.items() if status >= 500} == {}
    assert statuses["/api/v1/requests/"] == statuses["/api/v1/tokens/"] == 400
    assert Certificate.objects.get(pk=issued.pk).status == "valid"
    assert CertificateRequest.objects.count() == 1
    assert not RecoveryRequest.objects.exists() and not ApiToken.objects.exists()
