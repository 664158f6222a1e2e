"""Benchmark of directory publication against raw ldap3 (issue 13: ldap_publish_ratio).

Raw: one ldap3 connection bound as the publisher, one modify per entry adding the certificate
(the same modification the portal makes). Portal: `publications_drain()` of the same
certificates' outbox rows (search the entry, plan, modify, record the outcome, audit). Both
against a throwaway slapd (tests/slapd_server.py), interleaved; the entries are emptied and the
rows made due again between rounds, outside the timing.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from .cases_scale import _now, employees_create
from .harness import ROOT, Result
from .world import MAILBOX_DOMAIN, World

# --- LDAP publication ----------------------------------------------------------------------


def _slapd(workdir: Path):
    """The test suite's throwaway slapd (tests/slapd_server.py), started on free loopback ports."""
    sys.path.insert(0, str(ROOT / "tests"))
    from slapd_server import SlapdServer, find_program

    slapd, slapadd = find_program("slapd"), find_program("slapadd")
    if not (slapd and slapadd):
        raise RuntimeError("ldap_publish_ratio needs OpenLDAP's slapd and slapadd (apt-get install slapd)")
    server = SlapdServer(workdir, slapd=slapd, slapadd=slapadd)
    server.start()
    return server


def _leaf_certificates(world: World, mails: list[str]) -> list[bytes]:
    """Encryption-capable certificates signed by the world's CA (one key: key generation is not measured)."""
    ca_key, ca_certificate = world.raw.ca_key, world.raw.ca_certificate
    algorithm = hashes.SHA384() if isinstance(ca_key, ec.EllipticCurvePrivateKey) else hashes.SHA256()
    key = ec.generate_private_key(ec.SECP256R1())
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_certificate.public_key())
    usage = x509.KeyUsage(True, False, False, False, True, False, False, False, False)  # signature + key agreement
    now = _now()
    ders = []
    for mail in mails:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.EMAIL_ADDRESS, mail)]))
            .issuer_name(ca_certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(mail)]), critical=False)
            .add_extension(usage, critical=True)
            .add_extension(aki, critical=False)
        )
        ders.append(builder.sign(ca_key, algorithm).public_bytes(Encoding.DER))
    return ders


def _publication_rows(world: World, ders: list[bytes], *, prefix: str):
    """Employees, issued requests, their certificates (the real DER) and due outbox rows, in bulk."""
    from enrollment.models import Certificate, CertificateRequest, DirectoryPublication

    employees = employees_create(count=len(ders), prefix=prefix)
    requests = CertificateRequest.objects.bulk_create(
        [
            CertificateRequest(employee=e, submitted_by_id=e.user_id, key_type="ec-p256", state="issued")
            for e in employees
        ]
    )
    if requests and requests[0].pk is None:
        requests = list(CertificateRequest.objects.filter(employee__in=employees).order_by("pk"))
    now = _now()
    rows = []
    for employee, request, der in zip(employees, requests, ders, strict=True):
        certificate = x509.load_der_x509_certificate(der)
        rows.append(
            Certificate(
                request=request, employee=employee, issuer=world.ca, serial=format(certificate.serial_number, "x"),
                subject=certificate.subject.rfc4514_string(), mailbox=employee.mail, key_type="ec-p256",
                certificate_type="mailbox-strict", not_before=now - timedelta(minutes=5),
                not_after=now + timedelta(days=365), fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(),
                der=der, usage="dual",
            )
        )  # fmt: skip
    Certificate.objects.bulk_create(rows)
    certificates = Certificate.objects.filter(employee__in=employees)
    DirectoryPublication.objects.bulk_create([DirectoryPublication(certificate=c) for c in certificates])
    return DirectoryPublication.objects.filter(certificate__employee__in=employees)


def _interleaved_batches(*, raw, portal, reset, rounds: int, count: int) -> tuple[list[float], list[float]]:
    """raw, portal, raw, portal ...: each a whole batch of `count`, `reset()` before each, untimed."""
    raw_seconds, portal_seconds = [], []
    for _ in range(rounds):
        for function, seconds in ((raw, raw_seconds), (portal, portal_seconds)):
            reset()
            started = time.perf_counter()
            function()
            seconds.append(time.perf_counter() - started)
    return raw_seconds, portal_seconds


def ldap_publish_ratio(world: World, *, count: int, rounds: int) -> Result:
    """Publishing `count` certificates with `publications_drain` vs a raw ldap3 modify loop."""
    from django.conf import settings
    from django.utils import timezone
    from ldap3 import MODIFY_ADD, MODIFY_REPLACE, NONE, Connection, Server

    from enrollment.directory.drain import publications_drain

    workdir = Path(tempfile.mkdtemp(prefix="portal-bench-slapd-"))
    server = _slapd(workdir)
    from slapd_server import PEOPLE_DN, PUBLISHER_DN, PUBLISHER_PASSWORD

    overrides = {
        "PORTAL_LDAP_URI": server.uri, "PORTAL_LDAP_PRESET": "openldap", "PORTAL_LDAP_BIND_DN": PUBLISHER_DN,
        "PORTAL_LDAP_BIND_PASSWORD": PUBLISHER_PASSWORD, "PORTAL_LDAP_USER_BASE_DN": PEOPLE_DN,
        "PORTAL_LDAP_START_TLS": False, "PORTAL_LDAP_PUBLISH_SMIME_CAPABLE": None, "PORTAL_LDAP_CA_ENTRY_DN": "",
    }  # fmt: skip
    saved = {name: getattr(settings, name, None) for name in overrides}
    admin = raw_connection = None
    try:
        prefix = "ldappub"
        mails = [f"{prefix}{number}@{MAILBOX_DOMAIN}" for number in range(count)]
        dns = [f"uid={prefix}{number},{PEOPLE_DN}" for number in range(count)]
        admin = server.admin_connection()
        for number, dn in enumerate(dns):
            admin.add(
                dn,
                ["inetOrgPerson"],
                {"uid": f"{prefix}{number}", "cn": f"P {number}", "sn": "P", "mail": mails[number]},
            )
        ders = _leaf_certificates(world, mails)
        publications = _publication_rows(world, ders, prefix=prefix)
        for name, value in overrides.items():
            setattr(settings, name, value)
        raw_connection = Connection(
            Server(server.uri, get_info=NONE),
            user=PUBLISHER_DN,
            password=PUBLISHER_PASSWORD,
            auto_bind=True,
            raise_exceptions=True,
        )

        def raw() -> None:
            for dn, der in zip(dns, ders, strict=True):
                raw_connection.modify(dn, {"userCertificate;binary": [(MODIFY_ADD, [der])]})

        def portal() -> None:
            summary = publications_drain()
            if summary.published != count:
                raise RuntimeError(f"the drain published {summary.published} of {count}: {summary.errors[:3]}")

        def reset() -> None:
            for dn in dns:
                admin.modify(dn, {"userCertificate;binary": [(MODIFY_REPLACE, [])]})
            publications.update(state="pending", attempts=0, last_attempt_at=None, next_attempt_at=timezone.now())

        raw_seconds, portal_seconds = _interleaved_batches(
            raw=raw, portal=portal, reset=reset, rounds=rounds, count=count
        )
    finally:
        for connection in (raw_connection, admin):
            if connection is not None:
                connection.unbind()
        for name, value in saved.items():
            setattr(settings, name, value)
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    result = Result(
        name="ldap_publish_ratio",
        work=f"{count:,} certificates to slapd: ldap3 modify loop vs publications_drain",
        raw_per_second=count / statistics.median(raw_seconds),
        portal_per_second=count / statistics.median(portal_seconds),
        rounds=rounds,
        operations=count,
    )
    result.notes["certificates"] = count
    return result
