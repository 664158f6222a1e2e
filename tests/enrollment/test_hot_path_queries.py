"""The hot paths read no stored CRL and lists have their index (issue 13). Counted in SQL, not in time.

A CA's stored CRL is megabytes at 100,000 revoked certificates; every OCSP answer, issuance,
download and revocation used to read it with the CA row.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from django.db import connection
from django.test.utils import CaptureQueriesContext

from enrollment.revocation.ocsp import ocsp_respond
from enrollment.revocation.services import certificate_revoke, crl_generate


def _reads_the_crl(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("SELECT") and "crl_der" in q["sql"]]


@pytest.fixture
def ca_with_crl(pki):
    crl_generate(ca=pki["issuing"])
    crl_generate(ca=pki["root"])
    return pki


def test_issuance_does_not_read_the_stored_crl(ca_with_crl, alice, approver):
    from enrollment.services.requests import certificate_request_approve, certificate_request_create

    with CaptureQueriesContext(connection) as queries:
        request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
        assert certificate_request_approve(request_id=request.pk, approver=approver).state == "issued"
    assert _reads_the_crl(queries) == []


def test_an_ocsp_answer_does_not_read_the_stored_crl(ca_with_crl, issued):
    name_hash, key_hash = issuer_hashes_of(ca_with_crl["issuing"])
    request = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        name_hash, key_hash, int(issued.serial, 16), hashes.SHA1()
    )
    der = request.build().public_bytes(Encoding.DER)
    ocsp_respond(ca_slug="issuing-ca", request_der=der)  # the delegated responder is issued once
    with CaptureQueriesContext(connection) as queries:
        answer = ocsp.load_der_ocsp_response(ocsp_respond(ca_slug="issuing-ca", request_der=der))
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert queries.captured_queries and _reads_the_crl(queries) == []


def issuer_hashes_of(ca):
    from enrollment.pki.ocsp import issuer_hashes

    return issuer_hashes(ca.certificate, hashes.SHA1())


def test_a_download_and_a_revocation_do_not_read_the_stored_crl(ca_with_crl, issued, alice, approver):
    from escrow.services.pickups import pickup_copy_export

    with CaptureQueriesContext(connection) as queries:
        pickup_copy_export(actor=alice, serial=issued.serial, passphrase="a long passphrase", fmt="modern")
        certificate_revoke(serial=issued.serial, actor=approver, reason="superseded")
    assert _reads_the_crl(queries) == []


@pytest.mark.django_db
def test_the_certificates_default_ordering_has_an_index():
    from enrollment.models import Certificate

    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Certificate._meta.db_table)
    indexed = [c["columns"] for c in constraints.values() if c["index"]]
    assert ["not_before", "id"] in indexed, indexed


def test_the_directory_drain_reads_no_stored_crl(ca_with_crl, issued):
    """The drain's selector read each certificate's CA row with its CRL: ldap_publish_ratio fell
    from 0.29 to 0.06 once the benchmark's CRL held 20,000 entries."""
    from enrollment.directory.selectors import directory_certificates_by_employee

    with CaptureQueriesContext(connection) as queries:
        wanted = directory_certificates_by_employee(employee_ids=[issued.employee_id])
    assert [certificate.pk for certificate in wanted[issued.employee_id]] == [issued.pk]
    assert queries.captured_queries and _reads_the_crl(queries) == []
