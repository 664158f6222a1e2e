"""The benchmark's organization, made through the services: CA, recovery agent, people.

`World.raw` holds what the raw baselines use: the same CA key and certificate, the agent's
certificate and the pickup KEK, loaded once with plain `cryptography` (no portal code on
the measured path).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization

PASSPHRASE = "bench passphrase 1"
MAILBOX_DOMAIN = "example.org"


@dataclass
class RawMaterial:
    ca_key: object
    ca_certificate: x509.Certificate
    agent_certificate: x509.Certificate
    kek: bytes


@dataclass
class World:
    ca: object
    agent: object
    approver: object
    admin: object
    raw: RawMaterial
    employees: list = field(default_factory=list)
    _names: itertools.count = field(default_factory=itertools.count)

    def new_employee(self):
        """A fresh employee (one pending request per person and type: each gets its own)."""
        from django.contrib.auth import get_user_model

        from enrollment.services.employees import employee_upsert

        number = next(self._names)
        user = get_user_model().objects.create_user(username=f"bench{number}", email=f"bench{number}@{MAILBOX_DOMAIN}")
        employee_upsert(
            user=user, mail=f"bench{number}@{MAILBOX_DOMAIN}", given_name="Bench", surname=f"Person{number}"
        )
        self.employees.append(user)
        return user


def build_world(*, ca_key_type: str) -> World:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from enrollment.roles import APPROVERS
    from enrollment.services.authorities import ca_create
    from escrow.sealing import derive_kek
    from escrow.services.agents import key_recovery_agent_create

    ca = ca_create(common_name="Bench S/MIME CA", key_type=ca_key_type, base_url="http://pki.example.org")
    agent, _agent_key = key_recovery_agent_create(name="Bench recovery agent")
    User = get_user_model()
    approver = User.objects.create_user(username="approver", email=f"approver@{MAILBOX_DOMAIN}", is_staff=True)
    approver.groups.set(Group.objects.filter(name=APPROVERS))
    # "admin" is a demo account name: exempt from the second factor in development, as in `make run`.
    admin = User.objects.create_superuser(username="admin", email=f"admin@{MAILBOX_DOMAIN}", password=None)
    ca_key = serialization.load_pem_private_key(
        open(ca.key_reference, "rb").read(), password=settings.PORTAL_CA_PASSPHRASE.encode()
    )
    raw = RawMaterial(
        ca_key=ca_key,
        ca_certificate=ca.certificate,
        agent_certificate=agent.certificate,
        kek=derive_kek(settings.PORTAL_PICKUP_KEK),
    )
    return World(ca=ca, agent=agent, approver=approver, admin=admin, raw=raw)


def insert_revoked(*, ca, count: int, start: int = 0, status: str = "revoked") -> list[str]:
    """`count` certificate rows of `ca` with bulk_create (placeholder DER: no path measured parses it).

    Minimal rows, as many as a large organization revokes: the CRL reads serial, revocation
    time and reason; a revocation reads and writes the row.
    """
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from enrollment.models import Certificate, CertificateRequest, Employee

    reasons = ["key_compromise", "superseded", "cessation_of_operation", "affiliation_changed", ""]
    user, _ = get_user_model().objects.get_or_create(username="bulk", defaults={"email": f"bulk@{MAILBOX_DOMAIN}"})
    employee, _ = Employee.objects.get_or_create(
        user=user, defaults={"mail": f"bulk@{MAILBOX_DOMAIN}", "given_name": "Bulk", "surname": "Rows"}
    )
    now = timezone.now().replace(microsecond=0)
    serials = []
    for offset in range(0, count, 5000):
        size = min(5000, count - offset)
        requests = CertificateRequest.objects.bulk_create(
            [CertificateRequest(employee=employee, submitted_by=user, state="issued") for _ in range(size)]
        )
        if any(request.pk is None for request in requests):  # a backend without RETURNING
            requests = list(CertificateRequest.objects.order_by("-pk")[:size])[::-1]
        rows = []
        for i, request in enumerate(requests):
            number = start + offset + i
            serial = format((0x7000_0000 << 64) + number, "x")
            serials.append(serial)
            revoked = status == "revoked"
            rows.append(
                Certificate(
                    request=request,
                    employee=employee,
                    issuer=ca,
                    serial=serial,
                    subject=f"CN=bulk@{MAILBOX_DOMAIN}",
                    mailbox=f"bulk@{MAILBOX_DOMAIN}",
                    key_type="ec-p256",
                    certificate_type="mailbox-strict",
                    not_before=now - timedelta(days=30),
                    not_after=now + timedelta(days=335),
                    fingerprint_sha256=format((0xB << 240) + number, "064x"),
                    der=b"\x30\x00",
                    status=status,
                    revoked_at=now - timedelta(seconds=number) if revoked else None,
                    revocation_reason=reasons[number % len(reasons)] if revoked else "",
                )
            )
        Certificate.objects.bulk_create(rows)
    return serials
