"""Enrollment data: CAs, employees, certificate requests and certificates.

Models hold data and small derived properties; the workflow lives in services/.
"""

from __future__ import annotations

import unicodedata
from functools import cached_property

from cryptography import x509
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from .models_dual_control import IdentityChangeRequest, OffboardingRequest, RoleGrantRequest  # noqa: F401 - the app's models
from .pki import names
from .pki.keys import KEY_TYPES
from .pki.profiles import CERTIFICATE_TYPES

KEY_TYPE_CHOICES = list(KEY_TYPES.items())
CERTIFICATE_TYPE_CHOICES = list(CERTIFICATE_TYPES.items())


class KeyBackendName(models.TextChoices):
    """Where a CA's private key is reached (enrollment.keystore.ca); named per CA."""

    FILE = "file", "PKCS#8 file encrypted with PORTAL_CA_PASSPHRASE"
    PKCS11 = "pkcs11", "PKCS#11 token (HSM); the key never leaves it"
    NONE = "none", "no key here (an imported parent CA)"


class CertificateAuthorityQuerySet(models.QuerySet):
    def with_key(self) -> CertificateAuthorityQuerySet:
        """The CAs whose key the portal can use: those that sign CRLs and OCSP answers here."""
        return self.exclude(key_backend=KeyBackendName.NONE)


class CertificateAuthority(models.Model):
    """A CA of the organization: a root, or the issuing CA that signs employees' certificates."""

    slug = models.SlugField(unique=True, help_text="Names the CA in its public URLs.")
    common_name = models.CharField(max_length=64)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    certificate_der = models.BinaryField()
    key_backend = models.CharField(max_length=32, choices=KeyBackendName.choices, default=KeyBackendName.FILE)
    # Where the key backend finds the key: a file path for the encrypted-file backend, an
    # RFC 7512 URI "pkcs11:token=<token label>;object=<key label>" for the PKCS#11 backend.
    key_reference = models.CharField(max_length=500, blank=True)
    is_issuing = models.BooleanField(default=False, help_text="Signs employees' certificates.")
    # The public base URL baked into the certificates this CA signs (CRL, caIssuers).
    base_url = models.URLField()
    crl_number = models.PositiveBigIntegerField(default=0)
    crl_der = models.BinaryField(null=True, blank=True)
    crl_next_update = models.DateTimeField(null=True, blank=True)
    # Set by a revocation, cleared by the next CRL signed: the stored CRL lacks a revocation
    # (revocation.services: the CRL is reissued once per batch, at the latest when served).
    crl_stale_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CertificateAuthorityQuerySet.as_manager()

    class Meta:
        verbose_name = "certificate authority"
        verbose_name_plural = "certificate authorities"
        constraints = [
            models.UniqueConstraint(
                fields=["is_issuing"], condition=models.Q(is_issuing=True), name="one_issuing_ca"
            )
        ]

    def __str__(self) -> str:
        return self.common_name

    @cached_property
    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(bytes(self.certificate_der))

    @property
    def crl_url(self) -> str:
        return f"{self.base_url}/pki/{self.slug}.crl"

    @property
    def certificate_url(self) -> str:
        return f"{self.base_url}/pki/{self.slug}.crt"

    def chain(self) -> list[CertificateAuthority]:
        """This CA and its parents, up to the root."""
        chain, ca = [], self
        while ca is not None:
            chain.append(ca)
            ca = ca.parent
        return chain


class Employee(models.Model):
    """The identity a certificate binds: a Django user plus the directory's view of them."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="employee")
    given_name = models.CharField(max_length=64, blank=True)
    surname = models.CharField(max_length=64, blank=True)
    mail = models.EmailField(unique=True)
    department = models.CharField(max_length=128, blank=True)
    directory_dn = models.CharField("directory DN", max_length=500, blank=True)

    class Meta:
        ordering = ["surname", "given_name"]

    # The names certificates carry (or approvers read next to them), checked by pki.names.
    NAME_FIELDS = {"given_name": "given name", "surname": "surname", "department": "department"}

    def __str__(self) -> str:
        return f"{self.display_name} <{self.mail}>"

    def clean_fields(self, exclude=None):
        """pki.names first, for every way in (admin, API, directory, bootstrap: they all full_clean):
        names NFC-normalized, controls, bidi overrides, zero-width and other invisible characters
        refused with the code point named; the mailbox's domain in A-labels, its local part ASCII."""
        exclude = set(exclude or ())
        errors = {}
        for field, what in self.NAME_FIELDS.items():
            value = getattr(self, field)
            if field not in exclude and isinstance(value, str):
                try:
                    setattr(self, field, names.name_clean(value, what=what))
                except names.NameRefused as exc:
                    errors[field] = [str(exc)]
        if "mail" not in exclude and isinstance(self.mail, str):
            try:
                self.mail = names.mailbox_clean(self.mail)
            except names.NameRefused as exc:
                errors["mail"] = [str(exc)]
        try:
            super().clean_fields(exclude=exclude | set(errors))
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        # One encoding per name, even for code that saves without full_clean().
        for field in self.NAME_FIELDS:
            value = getattr(self, field)
            if isinstance(value, str):
                setattr(self, field, unicodedata.normalize("NFC", value))
        super().save(*args, **kwargs)

    @property
    def display_name(self) -> str:
        return " ".join(part for part in (self.given_name, self.surname) if part) or self.user.get_username()


class CertificateRequest(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"
        ISSUED = "issued"
        FAILED = "failed"

    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="requests")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="submitted_requests"
    )
    key_type = models.CharField(max_length=16, choices=KEY_TYPE_CHOICES, default="rsa-3072")
    certificate_type = models.CharField(max_length=32, choices=CERTIFICATE_TYPE_CHOICES, default="sponsor-strict")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="decided_requests"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="Why it was rejected, or why issuance failed.")
    key_separation = models.BooleanField(
        "separate signing and encryption keys",
        default=False,
        help_text="Issue a signing certificate (key never escrowed) and an encryption certificate (key escrowed).",
    )
    renewal_of = models.ForeignKey(
        "Certificate", null=True, blank=True, on_delete=models.PROTECT, related_name="renewals",
        help_text="The certificate this request renews.",
    )
    # None for requests filed one by one (models_batches.py). PROTECT: a batch is part of the record.
    batch = models.ForeignKey(
        "EnrollmentBatch", null=True, blank=True, editable=False, on_delete=models.PROTECT, related_name="requests",
        help_text="The bulk enrollment that filed this request.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("approve_certificaterequest", "Can approve or reject certificate requests")]
        # The approval queue (state pending, the oldest first) reads its page from this index, not a sort of every row.
        indexes = [models.Index(fields=["state", "created_at", "id"], name="request_state_created")]
        # The "only one" rules, in the database too (core/db.py: the lock order; 409 on a violation).
        constraints = [
            models.UniqueConstraint(
                fields=["employee", "certificate_type"],
                condition=models.Q(state="pending"),
                name="one_pending_request_per_employee_and_type",
                violation_error_message="There is a pending request for this employee and certificate type already.",
            ),
            models.UniqueConstraint(
                fields=["renewal_of"],
                condition=models.Q(renewal_of__isnull=False) & ~models.Q(state__in=["rejected", "failed"]),
                name="one_renewal_per_certificate",
                violation_error_message="This certificate has been renewed already.",
            ),
        ]

    def __str__(self) -> str:
        return f"Request #{self.pk} for {self.employee.mail}"

    @property
    def certificate(self) -> Certificate | None:
        """The certificate issued for this request; of a split pair, the encryption certificate."""
        certificates = sorted(self.certificates.all(), key=lambda c: c.usage == Certificate.Usage.SIGNING)
        return certificates[0] if certificates else None


class Certificate(models.Model):
    class Status(models.TextChoices):
        VALID = "valid"
        REVOKED = "revoked"
        EXPIRED = "expired"

    class Usage(models.TextChoices):
        DUAL = "dual", "signing and encryption"
        SIGNING = "signing", "signing only (key not escrowed)"
        ENCRYPTION = "encryption", "encryption only"

    # One certificate per request, or two for a split signing/encryption pair.
    request = models.ForeignKey(
        CertificateRequest, on_delete=models.PROTECT, related_name="certificates", related_query_name="certificate"
    )
    usage = models.CharField(max_length=16, choices=Usage.choices, default=Usage.DUAL)
    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="certificates")
    issuer = models.ForeignKey(CertificateAuthority, on_delete=models.PROTECT, related_name="certificates")
    serial = models.CharField(max_length=42, unique=True, help_text="Lower-case hex, no separators.")
    subject = models.CharField(max_length=500)
    mailbox = models.EmailField(db_index=True)
    key_type = models.CharField(max_length=16, choices=KEY_TYPE_CHOICES)
    certificate_type = models.CharField(max_length=32, choices=CERTIFICATE_TYPE_CHOICES)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField(db_index=True)
    fingerprint_sha256 = models.CharField(max_length=64, unique=True)
    der = models.BinaryField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.VALID, db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # A member name of cryptography's x509.ReasonFlags (key_compromise, superseded, ...).
    revocation_reason = models.CharField(max_length=32, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="revoked_certificates"
    )
    revocation_comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-not_before", "-id"]
        permissions = [("revoke_certificate", "Can revoke certificates")]
        constraints = [
            models.UniqueConstraint(fields=["request", "usage"], name="one_certificate_per_request_and_usage")
        ]
        # The default ordering: lists (admin, API) read the newest page from the index, not a sort of every row.
        indexes = [models.Index(fields=["not_before", "id"], name="certificate_not_before")]

    def __str__(self) -> str:
        return f"{self.mailbox} ({self.serial})"

    @cached_property
    def x509(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(bytes(self.der))


class ExpiryNotice(models.Model):
    """An expiry reminder sent: at most one per certificate and threshold."""

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="expiry_notices")
    threshold_days = models.PositiveIntegerField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["certificate", "threshold_days"], name="one_notice_per_threshold")
        ]

    def __str__(self) -> str:
        return f"{self.threshold_days}-day expiry notice for {self.certificate}"


class DirectoryPublication(models.Model):
    """Whether a certificate is on its owner's directory entry, and what is left to do there.

    An outbox row: services set the wanted state (pending: publish, remove_pending:
    unpublish) with next_attempt_at; the publishing task, the admin retry and
    `manage.py publish_pending` carry it out and record the outcome. Failures keep the
    row due again later (exponential backoff), so nothing is lost while the directory is down.
    """

    class State(models.TextChoices):
        PENDING = "pending", "publication pending"
        PUBLISHED = "published", "published"
        FAILED = "failed", "publication failed (retried)"
        REMOVE_PENDING = "remove_pending", "removal pending"
        REMOVE_FAILED = "remove_failed", "removal failed (retried)"
        REMOVED = "removed", "removed"
        SUPERSEDED = "superseded", "superseded by a newer certificate"

    certificate = models.OneToOneField(Certificate, on_delete=models.CASCADE, related_name="directory_publication")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    entry_dn = models.CharField("directory entry", max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts at the current operation.")
    last_error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # When the next attempt is due; empty once there is nothing left to do.
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        permissions = [("retry_directorypublication", "Can retry directory publication now")]

    def __str__(self) -> str:
        return f"{self.certificate} in the directory: {self.get_state_display()}"

from .models_batches import EnrollmentBatch  # noqa: E402,F401,I001 - bulk enrollment batches
