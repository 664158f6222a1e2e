"""Benchmarks of certificate status and the audit log, each against a raw baseline.

OCSP, raw: parse the request, `OCSPResponseBuilder` for one certificate, sign with a key of
the responder's type. Portal: `ocsp_respond` (in process) and POST /ocsp/<ca> through
Django's whole stack (middleware, view).

CRL, raw: the revoked rows read with one query, `CertificateRevocationListBuilder`, signed
with the CA key. Portal: `crl_generate` (streamed rows, the CA row locked, stored, audited).

Revocation: `certificate_revoke` on a CA with many revoked certificates against the same on
a CA with none (both through the services, interleaved): 1.0 means a revocation's cost does
not grow with the CRL.

Audit changelist, raw: the newest page (100 events) read with one query and each event's
HMAC-SHA256 recomputed. Portal: GET /admin/audit/auditevent/ as the superuser, the chain verified
by the periodic job first (as beat keeps it), so that the page only reads the stored point.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from .harness import Result, interleaved
from .world import World, insert_revoked


def _key_like(ca_key):
    if isinstance(ca_key, rsa.RSAPrivateKey):
        return rsa.generate_private_key(public_exponent=65537, key_size=ca_key.key_size)
    return ec.generate_private_key(ca_key.curve)


def _responder(world: World):
    """A responder key of the CA key's type and a certificate for it (made once, not measured)."""
    key = _key_like(world.raw.ca_key)
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Bench raw OCSP responder")]))
        .issuer_name(world.raw.ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=2))
        .sign(world.raw.ca_key, hashes.SHA384())
    )
    return key, certificate


def _ocsp_requests(world: World, serials: list[str], count: int) -> list[bytes]:
    issuer = world.raw.ca_certificate
    name_hash = hashlib.sha1(issuer.subject.public_bytes()).digest()
    key_hash = x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest
    return [
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(name_hash, key_hash, int(serials[i % len(serials)], 16), hashes.SHA1())
        .build()
        .public_bytes(Encoding.DER)
        for i in range(count)
    ]


def ocsp_responses(world: World, *, certificate, rounds: int, per_round: int) -> list[Result]:
    from django.test import Client

    from enrollment.revocation.ocsp import ocsp_respond

    ders = _ocsp_requests(world, [certificate.serial], 1)
    responder_key, responder_certificate = _responder(world)
    subject = certificate.x509

    def raw(index: int) -> None:
        request = ocsp.load_der_ocsp_request(ders[0])
        now = datetime.now(timezone.utc).replace(microsecond=0)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=subject,
                issuer=world.raw.ca_certificate,
                algorithm=request.hash_algorithm,
                cert_status=ocsp.OCSPCertStatus.GOOD,
                this_update=now,
                next_update=now + timedelta(hours=24),
                revocation_time=None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, responder_certificate)
            .certificates([responder_certificate])
        )
        builder.sign(responder_key, hashes.SHA256()).public_bytes(Encoding.DER)

    def in_process(index: int) -> None:
        answer = ocsp.load_der_ocsp_response(ocsp_respond(ca_slug=world.ca.slug, request_der=ders[0]))
        if answer.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise RuntimeError(f"OCSP answered {answer.response_status}")

    client = Client()

    def over_http(index: int) -> None:
        response = client.post(f"/ocsp/{world.ca.slug}", data=ders[0], content_type="application/ocsp-request")
        if response.status_code != 200:
            raise RuntimeError(f"OCSP over HTTP answered {response.status_code}")

    work = "OCSPResponseBuilder vs "
    return [
        interleaved(name="ocsp_in_process", work=work + "ocsp_respond", raw=raw, portal=in_process,
                    rounds=rounds, per_round=per_round),
        interleaved(name="ocsp_http", work=work + "POST /ocsp/<ca> (Django stack)", raw=raw, portal=over_http,
                    rounds=rounds, per_round=per_round),
    ]  # fmt: skip


def crl(world: World, *, count: int, rounds: int) -> Result:
    from enrollment.models import Certificate
    from enrollment.revocation.services import crl_generate

    insert_revoked(ca=world.ca, count=count)
    ca_certificate, ca_key = world.raw.ca_certificate, world.raw.ca_key

    def raw(index: int) -> None:
        rows = Certificate.objects.filter(issuer_id=world.ca.pk, status="revoked").values_list(
            "serial", "revoked_at", "revocation_reason"
        )
        revoked = []
        for serial, revoked_at, reason in rows.iterator(chunk_size=5000):
            entry = x509.RevokedCertificateBuilder().serial_number(int(serial, 16)).revocation_date(revoked_at)
            if reason and reason != "unspecified":
                entry = entry.add_extension(x509.CRLReason(x509.ReasonFlags[reason]), critical=False)
            revoked.append(entry.build())
        now = datetime.now(timezone.utc).replace(microsecond=0)
        # The finished list to the constructor: add_revoked_certificate() copies the list on every call.
        builder = (
            x509.CertificateRevocationListBuilder(revoked_certificates=revoked)
            .issuer_name(ca_certificate.subject)
            .last_update(now)
            .next_update(now + timedelta(days=7))
            .add_extension(x509.CRLNumber(index + 1), critical=False)
        )
        builder.sign(ca_key, hashes.SHA384() if isinstance(ca_key, ec.EllipticCurvePrivateKey) else hashes.SHA256())

    def portal(index: int) -> None:
        crl_generate(ca=world.ca)

    result = interleaved(
        name=f"crl_{count}",
        work=f"CRL of {count:,} revoked: CRL builder over one query vs crl_generate",
        raw=raw,
        portal=portal,
        rounds=rounds,
        per_round=1,
    )
    result.notes["revoked"] = count
    return result


def revocation_cost(world: World, *, revoked: int, rounds: int, per_round: int) -> Result:
    """One revocation on the CA with `revoked` revoked certificates vs one on a CA with none."""
    from enrollment.models import CertificateAuthority
    from enrollment.revocation.services import certificate_revoke

    quiet = CertificateAuthority.objects.create(
        slug="bench-quiet",
        common_name="Bench quiet CA",
        certificate_der=world.ca.certificate_der,
        key_reference=world.ca.key_reference,
        base_url=world.ca.base_url,
    )
    needed = (rounds * per_round) // 2 + per_round + 2
    quiet_serials = iter(insert_revoked(ca=quiet, count=needed, start=10_000_000, status="valid"))
    busy_serials = iter(insert_revoked(ca=world.ca, count=needed, start=20_000_000, status="valid"))

    def revoke(serials) -> None:
        certificate_revoke(serial=next(serials), actor=world.admin, reason="cessation_of_operation")

    result = interleaved(
        name="revocation_cost",
        work=f"certificate_revoke: CA with no revoked vs CA with {revoked:,} revoked",
        raw=lambda index: revoke(quiet_serials),
        portal=lambda index: revoke(busy_serials),
        rounds=rounds,
        per_round=max(1, per_round // 2),
    )
    result.notes["revoked"] = revoked
    return result


def audit_changelist(world: World, *, events: int, rounds: int, per_round: int) -> Result:
    from django.conf import settings
    from django.db import transaction
    from django.test import Client

    from audit.events import AuditAction
    from audit.models import AuditEvent
    from audit.services import audit_record
    from audit.verification import audit_chain_advance

    missing = events - AuditEvent.objects.count()
    with transaction.atomic():
        for number in range(max(0, missing)):
            audit_record(action=AuditAction.CRL_GENERATED, obj=world.ca, details={"bench": number})
    audit_chain_advance(limit=None)  # what beat's audit.chain_verify does every 5 minutes: the page reads its point
    key = settings.PORTAL_AUDIT_CHAIN_KEY.encode()
    client = Client()
    client.force_login(world.admin)

    def raw(index: int) -> None:
        page = AuditEvent.objects.order_by("-id").values(
            "id",
            "timestamp",
            "actor_id",
            "actor_name",
            "action",
            "object_type",
            "object_id",
            "details",
            "previous_hash",
        )[:100]
        for row in page:
            message = json.dumps(row, sort_keys=True, default=str, separators=(",", ":")).encode()
            hmac.new(key, message, hashlib.sha256).hexdigest()

    def portal(index: int) -> None:
        response = client.get("/admin/audit/auditevent/")
        if response.status_code != 200:
            raise RuntimeError(f"the audit changelist answered {response.status_code}")

    result = interleaved(
        name="audit_changelist",
        work=f"{events:,} events: a page + its HMACs vs GET /admin/audit/auditevent/",
        raw=raw,
        portal=portal,
        rounds=rounds,
        per_round=per_round,
    )
    result.notes["events"] = AuditEvent.objects.count()
    return result
