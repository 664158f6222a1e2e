"""The pure OCSP responder (enrollment.pki.ocsp): no Django, no database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp as x509_ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from enrollment.pki import crl, ocsp
from enrollment.pki.backends import InMemoryKeyBackend

R = x509.ReasonFlags
S = x509_ocsp.OCSPResponseStatus
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def leaves(pkis, subscriber_keys, subscriber_builder):
    """A subscriber certificate per chain."""
    return {
        name: pki.backend.sign_certificate(subscriber_builder(pki, subscriber_keys["ec-p256"].public_key()))
        for name, pki in pkis.items()
    }


@pytest.fixture(scope="module")
def responders(pkis):
    """A delegated responder certificate and its key backend per chain."""
    result = {}
    for name, pki in pkis.items():
        key = ocsp.responder_key_like(pki.issuing.public_key())
        certificate = pki.backend.sign_certificate(
            ocsp.responder_certificate_builder(
                public_key=key.public_key(),
                issuer_certificate=pki.issuing,
                not_before=datetime.now(timezone.utc) - timedelta(minutes=5),
            )
        )
        result[name] = (certificate, InMemoryKeyBackend(key))
    return result


def request_der(certificate, issuer, *, algorithm=None, nonce=None) -> bytes:
    builder = x509_ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, algorithm or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def answer(pki, der, status=ocsp.GOOD, *, responder=None, validity=DAY, now=None, issuer="default"):
    """Run ocsp.respond; `responder` None signs with the CA key."""
    if responder is None:
        signer = (ocsp.Responder(pki.issuing, delegated=False), pki.backend)
    else:
        signer = (ocsp.Responder(responder[0], delegated=True), responder[1])
    looked_up = []

    def lookup(serial):
        looked_up.append(serial)
        return status

    response = ocsp.respond(
        request_der=der,
        issuer_certificate=pki.issuing if issuer == "default" else issuer,
        lookup=lookup,
        responder=lambda: signer,
        now=now or datetime.now(timezone.utc),
        validity=validity,
    )
    return x509_ocsp.load_der_ocsp_response(response), looked_up


def signed_by(response, certificate) -> bool:
    key = certificate.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm))
        else:
            from cryptography.hazmat.primitives.asymmetric import padding

            key.verify(
                response.signature, response.tbs_response_bytes, padding.PKCS1v15(), response.signature_hash_algorithm
            )
    except Exception:
        return False
    return True


@pytest.mark.parametrize("chain", ["rsa", "ec"])
def test_good_by_the_ca(pkis, leaves, chain):
    pki, leaf = pkis[chain], leaves[chain]
    now = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    response, looked_up = answer(pki, request_der(leaf, pki.issuing), now=now)
    assert looked_up == [leaf.serial_number]
    assert response.response_status is S.SUCCESSFUL
    assert response.certificate_status is x509_ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == leaf.serial_number
    assert response.this_update_utc == now.replace(microsecond=0)
    assert response.next_update_utc == now.replace(microsecond=0) + DAY
    assert response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(pki.issuing.public_key()).digest
    assert response.certificates == []  # the client has the CA certificate already
    assert len(response.extensions) == 0  # no nonce asked, none sent
    assert signed_by(response, pki.issuing)


@pytest.mark.parametrize("chain", ["rsa", "ec"])
def test_revoked_with_time_and_reason_by_a_delegated_responder(pkis, leaves, responders, chain):
    pki, leaf = pkis[chain], leaves[chain]
    revoked_at = datetime(2026, 2, 1, 8, 30, tzinfo=timezone.utc)
    status = ocsp.StatusInfo(ocsp.CertStatus.REVOKED, revoked_at, R.key_compromise)
    response, _ = answer(pki, request_der(leaf, pki.issuing), status, responder=responders[chain])
    assert response.certificate_status is x509_ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_time_utc == revoked_at
    assert response.revocation_reason is R.key_compromise
    responder = responders[chain][0]
    assert response.certificates == [responder]
    assert response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(responder.public_key()).digest
    assert signed_by(response, responder) and not signed_by(response, pki.issuing)


def test_unspecified_reason_is_omitted(ec_pki, leaves):
    status = ocsp.StatusInfo(ocsp.CertStatus.REVOKED, datetime.now(timezone.utc), R.unspecified)
    response, _ = answer(ec_pki, request_der(leaves["ec"], ec_pki.issuing), status)
    assert response.certificate_status is x509_ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is None


def test_unknown(ec_pki, leaves):
    response, _ = answer(ec_pki, request_der(leaves["ec"], ec_pki.issuing), ocsp.UNKNOWN)
    assert response.response_status is S.SUCCESSFUL
    assert response.certificate_status is x509_ocsp.OCSPCertStatus.UNKNOWN


@pytest.mark.parametrize("nonce", [b"\x01", b"0123456789abcdef", b"x" * 32])
def test_nonce_is_echoed(ec_pki, leaves, nonce):
    response, _ = answer(ec_pki, request_der(leaves["ec"], ec_pki.issuing, nonce=nonce))
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce


@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA256(), hashes.SHA384(), hashes.SHA512()])
@pytest.mark.parametrize("chain", ["rsa", "ec"])
def test_cert_id_hash_algorithms(pkis, leaves, chain, algorithm):
    pki = pkis[chain]
    der = request_der(leaves[chain], pki.issuing, algorithm=algorithm)
    assert ocsp.matches_issuer(ocsp.parse_request(der), pki.issuing)
    response, _ = answer(pki, der)
    assert response.certificate_status is x509_ocsp.OCSPCertStatus.GOOD
    assert response.hash_algorithm.name == algorithm.name
    # The response names the certificate exactly as the request did.
    request = x509_ocsp.load_der_ocsp_request(der)
    assert response.issuer_key_hash == request.issuer_key_hash
    assert response.issuer_name_hash == request.issuer_name_hash


def test_issuer_hashes_match_cryptography(pkis, leaves):
    for name, pki in pkis.items():
        request = x509_ocsp.load_der_ocsp_request(request_der(leaves[name], pki.issuing, algorithm=hashes.SHA256()))
        assert ocsp.issuer_hashes(pki.issuing, hashes.SHA256()) == (request.issuer_name_hash, request.issuer_key_hash)


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"garbage",
        b"\x30\x00",
        b"\x30\x03\x02\x01\x05",
        b"\x30" + b"\x82\xff\xff" + b"\x00" * 100,
        b"\x00" * (ocsp.MAX_REQUEST_SIZE + 1),
    ],
)
def test_malformed_requests_get_malformed_request(ec_pki, der):
    response, looked_up = answer(ec_pki, der)
    assert response.response_status is S.MALFORMED_REQUEST
    assert looked_up == []


def test_oversized_nonce_is_malformed(ec_pki, leaves):
    # RFC 8954: at most 32 octets.
    response, _ = answer(ec_pki, request_der(leaves["ec"], ec_pki.issuing, nonce=b"x" * 33))
    assert response.response_status is S.MALFORMED_REQUEST
    with pytest.raises(ocsp.MalformedRequest):
        ocsp.parse_request(request_der(leaves["ec"], ec_pki.issuing, nonce=b"x" * 33))


def test_wrong_issuer_is_unauthorized(pkis, leaves):
    # A request naming the RSA chain's CA, sent to the EC chain's responder.
    response, looked_up = answer(pkis["ec"], request_der(leaves["rsa"], pkis["rsa"].issuing))
    assert response.response_status is S.UNAUTHORIZED
    assert looked_up == []
    # Same name, other key (the hashes cover both): also unauthorized.
    response, _ = answer(pkis["ec"], request_der(leaves["ec"], pkis["ec"].issuing), issuer=pkis["ec"].root)
    assert response.response_status is S.UNAUTHORIZED
    # No CA at all (an unknown CA in the URL).
    response, _ = answer(pkis["ec"], request_der(leaves["ec"], pkis["ec"].issuing), issuer=None)
    assert response.response_status is S.UNAUTHORIZED


@pytest.mark.parametrize(
    "validity, allowed",
    [
        (timedelta(hours=8) - timedelta(seconds=1), True),  # inclusive: exactly 8 hours
        (timedelta(hours=8) - timedelta(seconds=2), False),
        (timedelta(days=1), True),
        (timedelta(days=10) - timedelta(seconds=1), True),  # exactly 10 days, inclusive
        (timedelta(days=10), False),
        (timedelta(0), False),
    ],
)
def test_validity_window(ec_pki, leaves, validity, allowed):
    der = request_der(leaves["ec"], ec_pki.issuing)
    if not allowed:
        with pytest.raises(ValueError, match="8 hours"):
            answer(ec_pki, der, validity=validity)
        return
    response, _ = answer(ec_pki, der, validity=validity)
    assert response.next_update_utc - response.this_update_utc == validity


def test_status_info_is_consistent():
    with pytest.raises(ValueError):
        ocsp.StatusInfo(ocsp.CertStatus.REVOKED)
    with pytest.raises(ValueError):
        ocsp.StatusInfo(ocsp.CertStatus.REVOKED, datetime(2026, 1, 1))  # naive
    with pytest.raises(ValueError):
        ocsp.StatusInfo(ocsp.CertStatus.GOOD, datetime.now(timezone.utc))


@pytest.mark.parametrize("chain", ["rsa", "ec"])
def test_responder_certificate_profile(pkis, responders, chain, write_pem, run_cli, venv_bin, tmp_path):
    pki = pkis[chain]
    certificate = responders[chain][0]
    certificate.verify_directly_issued_by(pki.issuing)
    assert ocsp.is_responder_for(certificate, pki.issuing)
    assert not ocsp.is_responder_for(certificate, pki.root)
    assert not ocsp.is_responder_for(pki.issuing, pki.issuing)
    extensions = certificate.extensions
    assert list(extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    assert extensions.get_extension_for_class(x509.OCSPNoCheck).critical is False
    key_usage = extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical and key_usage.value.digital_signature and not key_usage.value.key_cert_sign
    assert type(certificate.public_key()) is type(pki.issuing.public_key())
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime == timedelta(days=30) - timedelta(seconds=1)
    assert certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value.endswith("OCSP Responder")

    pem = write_pem(tmp_path / "responder.pem", certificate)
    issuer = write_pem(tmp_path / "issuer.pem", pki.issuing)
    for command in (
        (venv_bin / "lint_pkix_cert", "lint", "-s", "WARNING", pem),
        (venv_bin / "lint_cabf_serverauth_cert", "lint", "-t", "OCSP-RESPONDER", "-s", "WARNING", pem),
        (venv_bin / "lint_pkix_signer_signee_cert_chain", "lint", "-s", "WARNING", issuer, pem),
    ):
        result = run_cli(*command)
        assert result.returncode == 0 and result.stdout.strip() == "", (command[0], result.stdout)


def test_responder_certificate_never_outlives_its_ca(ec_pki):
    key = ocsp.responder_key_like(ec_pki.issuing.public_key())
    late = ec_pki.issuing.not_valid_after_utc - timedelta(days=3)
    certificate = ec_pki.backend.sign_certificate(
        ocsp.responder_certificate_builder(public_key=key.public_key(), issuer_certificate=ec_pki.issuing, not_before=late)
    )
    assert certificate.not_valid_after_utc == ec_pki.issuing.not_valid_after_utc
    with pytest.raises(ValueError, match="expired"):
        ocsp.responder_certificate_builder(
            public_key=key.public_key(),
            issuer_certificate=ec_pki.issuing,
            not_before=ec_pki.issuing.not_valid_after_utc + DAY,
        )


@pytest.mark.parametrize("chain", ["rsa", "ec"])
def test_responses_pass_pkilint(pkis, leaves, responders, chain, tmp_path, run_cli, venv_bin):
    pki, leaf = pkis[chain], leaves[chain]
    der = request_der(leaf, pki.issuing, nonce=b"n" * 16)
    revoked = ocsp.StatusInfo(ocsp.CertStatus.REVOKED, datetime.now(timezone.utc) - DAY, R.superseded)
    responses = {
        "good-ca": answer(pki, der)[0],
        "revoked-delegated": answer(pki, der, revoked, responder=responders[chain])[0],
        "unknown-delegated": answer(pki, der, ocsp.UNKNOWN, responder=responders[chain])[0],
        "malformed": answer(pki, b"junk")[0],
        "unauthorized": answer(pki, der, issuer=None)[0],
    }
    for name, response in responses.items():
        path = tmp_path / f"{name}.der"
        path.write_bytes(response.public_bytes(serialization.Encoding.DER))
        result = run_cli(venv_bin / "lint_ocsp_response", "lint", "-s", "WARNING", path)
        assert result.returncode == 0 and result.stdout.strip() == "", (name, result.stdout)


def test_a_crl_with_many_entries_and_every_reason_passes_lint_crl(ec_pki, now, write_pem, run_cli, venv_bin, tmp_path):
    this_update = now()
    reasons = [None, R.unspecified, *sorted(crl.REVOCATION_REASONS, key=lambda r: r.name)]
    entries = [
        crl.RevokedEntry(0x5000_0000 + i, this_update - timedelta(minutes=i), reasons[i % len(reasons)])
        for i in range(5000)
    ]
    revocation_list = ec_pki.backend.sign_crl(
        crl.crl_builder(
            issuer_certificate=ec_pki.issuing,
            entries=entries,
            crl_number=12345,
            this_update=this_update,
            next_update=this_update + timedelta(days=7),
        )
    )
    assert len(revocation_list) == 5000
    seen = set()
    for revoked in revocation_list:
        try:
            seen.add(revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason)
        except x509.ExtensionNotFound:
            seen.add(None)
    assert seen == {None} | set(crl.REVOCATION_REASONS)
    path = write_pem(tmp_path / "big.crl", revocation_list)
    for profile in ("BR", "PKIX"):
        result = run_cli(venv_bin / "lint_crl", "lint", "-t", "CRL", "-p", profile, "-s", "WARNING", path)
        assert result.returncode == 0 and result.stdout.strip() == "", (profile, result.stdout[:2000])
