"""API v1 serializers: what goes in (validated, with messages a person understands) and what comes out.

Serializers check the shape of input; the services decide (permissions, states, policy).
"""

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from django.contrib.auth.validators import UnicodeUsernameValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.views import MAX_ID
from enrollment.models import Certificate, CertificateAuthority, CertificateRequest, DirectoryPublication, Employee
from enrollment.pki.crl import REVOCATION_REASON_NAMES
from enrollment.pki.keys import KEY_TYPES
from enrollment.pki.names import name_review
from enrollment.pki.pkcs12 import MIN_PASSPHRASE_LENGTH, PKCS12_FORMATS
from enrollment.pki.profiles import CERTIFICATE_TYPES, name_text


def _choice(choices: dict | list, *, what: str, **kwargs) -> serializers.ChoiceField:
    names = list(choices)
    return serializers.ChoiceField(
        choices=list(choices.items()) if isinstance(choices, dict) else names,
        error_messages={"invalid_choice": f'"{{input}}" is not a {what}; choose one of {", ".join(map(str, names))}.'},
        **kwargs,
    )


def _mail_domain_allowed(mail: str) -> None:
    domain = mail.rsplit("@", 1)[-1].lower()
    allowed = settings.PORTAL_MAIL_DOMAINS
    if allowed and domain not in allowed:
        raise serializers.ValidationError(
            f"This CA does not certify addresses at {domain}; it certifies {', '.join(allowed)}."
        )


class MailboxField(serializers.EmailField):
    """An e-mail address, lower-cased, at a domain the CA certifies (PORTAL_MAIL_DOMAINS)."""

    default_error_messages = {"invalid": "Enter a mailbox such as jane.doe@example.org."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 254)
        super().__init__(**kwargs)

    def run_validation(self, data=serializers.empty):
        value = super().run_validation(data)  # the syntax first, then the domain
        if isinstance(value, str) and value:
            value = value.strip().lower()
            _mail_domain_allowed(value)
        return value


# --- Certificates ---------------------------------------------------------------------------


class CertificateSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Certificate
        fields = ["serial", "mailbox", "subject", "usage", "not_before", "not_after", "status", "fingerprint_sha256"]


class CertificateListSerializer(serializers.ModelSerializer):
    issuer = serializers.CharField(source="issuer.slug", help_text="The issuing CA's slug (see /api/v1/ca/).")
    request = serializers.IntegerField(source="request_id")

    class Meta:
        model = Certificate
        fields = [
            "serial", "subject", "mailbox", "issuer", "request", "usage", "key_type", "certificate_type",
            "not_before", "not_after", "status", "revoked_at", "revocation_reason", "fingerprint_sha256",
        ]


class CertificateSerializer(CertificateListSerializer):
    pem = serializers.SerializerMethodField()

    class Meta(CertificateListSerializer.Meta):
        fields = [*CertificateListSerializer.Meta.fields, "pem"]

    def get_pem(self, obj) -> str:
        return obj.x509.public_bytes(Encoding.PEM).decode()


class Pkcs12Serializer(serializers.Serializer):
    passphrase = serializers.CharField(
        min_length=MIN_PASSPHRASE_LENGTH,
        max_length=1024,
        trim_whitespace=False,
        help_text=f"Protects the file; at least {MIN_PASSPHRASE_LENGTH} characters.",
        error_messages={
            "min_length": f"Choose a passphrase of at least {MIN_PASSPHRASE_LENGTH} characters.",
            "blank": f"Choose a passphrase of at least {MIN_PASSPHRASE_LENGTH} characters.",
        },
    )
    format = _choice(PKCS12_FORMATS, what="PKCS#12 format", default="modern")


class RevokeSerializer(serializers.Serializer):
    reason = _choice(
        list(REVOCATION_REASON_NAMES),
        what="revocation reason",
        help_text="An owner may give key_compromise or superseded; approvers and PKI administrators any.",
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


# --- Requests -------------------------------------------------------------------------------


class CertificateRequestSerializer(serializers.ModelSerializer):
    status = serializers.CharField(source="state", help_text="The request's state (same as `state`).")
    mailbox = serializers.CharField(source="employee.mail")
    employee = serializers.CharField(source="employee.user.username", help_text="The employee's username.")
    employee_id = serializers.IntegerField()
    submitted_by = serializers.CharField(source="submitted_by.username")
    decided_by = serializers.CharField(source="decided_by.username", default=None, allow_null=True)
    certificate = serializers.SerializerMethodField()
    certificates = serializers.SerializerMethodField()
    names = serializers.SerializerMethodField(
        help_text="For the approver: the employee's names with every non-ASCII character as <U+XXXX> (`escaped`), "
        "and what to check (`warnings`: mixed scripts, Latin look-alikes, per UTS #39)."
    )

    class Meta:
        model = CertificateRequest
        fields = [
            "id", "state", "status", "employee", "employee_id", "mailbox", "key_type", "certificate_type",
            "submitted_by", "created_at", "decided_by", "decided_at", "reason", "certificate", "certificates", "names",
        ]

    @extend_schema_field(
        {
            "type": "object",
            "properties": {
                "escaped": {"type": "object", "additionalProperties": {"type": "string"}},
                "warnings": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["escaped", "warnings"],
        }
    )
    def get_names(self, obj) -> dict:
        employee = obj.employee
        review = name_review(
            given_name=employee.given_name, surname=employee.surname, mailbox=employee.mail,
            department=employee.department,
        )
        return {"escaped": review.escaped, "warnings": review.warnings}

    def _issued(self, obj) -> list:
        if obj.state != CertificateRequest.State.ISSUED:
            return []
        return sorted(obj.certificates.all(), key=lambda c: (c.usage == Certificate.Usage.SIGNING, c.pk))

    @extend_schema_field(CertificateSummarySerializer(allow_null=True))
    def get_certificate(self, obj):
        """The issued (dual-use or encryption) certificate, or null."""
        issued = self._issued(obj)
        return CertificateSummarySerializer(issued[0]).data if issued else None

    @extend_schema_field(CertificateSummarySerializer(many=True))
    def get_certificates(self, obj):
        """Every certificate issued for the request (two with separate signing and encryption keys)."""
        return CertificateSummarySerializer(self._issued(obj), many=True).data


class CertificateRequestCreateSerializer(serializers.Serializer):
    key_type = _choice(KEY_TYPES, what="key type this CA issues", default="rsa-3072")
    certificate_type = _choice(CERTIFICATE_TYPES, what="certificate type", default="sponsor-strict")
    employee = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="Approvers only: the employee (id) to request for. Leave out (with mail) to request for yourself.",
    )
    mail = serializers.EmailField(
        required=False,
        max_length=254,
        help_text="Approvers only: the employee to request for, by mailbox.",
        error_messages={"invalid": "Enter a mailbox such as jane.doe@example.org."},
    )

    def validate(self, attrs):
        if "employee" in attrs and "mail" in attrs:
            raise serializers.ValidationError({"mail": "Name the employee by id or by mail, not both."})
        return attrs


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=2000,
        allow_blank=False,
        trim_whitespace=True,
        help_text="Why; the employee reads it.",
        error_messages={"blank": "Say why the request is rejected.", "required": "Say why the request is rejected."},
    )


# --- CAs ------------------------------------------------------------------------------------


class CertificateAuthoritySerializer(serializers.ModelSerializer):
    parent = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    subject = serializers.SerializerMethodField()
    not_before = serializers.SerializerMethodField()
    not_after = serializers.SerializerMethodField()
    fingerprint_sha256 = serializers.SerializerMethodField()
    pem = serializers.SerializerMethodField()
    certificate_url = serializers.CharField(read_only=True)
    crl_url = serializers.CharField(read_only=True)

    class Meta:
        model = CertificateAuthority
        fields = [
            "slug", "common_name", "subject", "parent", "is_issuing", "not_before", "not_after",
            "fingerprint_sha256", "certificate_url", "crl_url", "pem",
        ]

    def get_subject(self, obj) -> str:
        return name_text(obj.certificate.subject)

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_not_before(self, obj):
        return obj.certificate.not_valid_before_utc.isoformat().replace("+00:00", "Z")

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_not_after(self, obj):
        return obj.certificate.not_valid_after_utc.isoformat().replace("+00:00", "Z")

    def get_fingerprint_sha256(self, obj) -> str:
        return obj.certificate.fingerprint(hashes.SHA256()).hex()

    def get_pem(self, obj) -> str:
        return obj.certificate.public_bytes(Encoding.PEM).decode()


class CrlQuerySerializer(serializers.Serializer):
    encoding = _choice(["der", "pem"], what="CRL encoding", default="der", help_text="der (default) or pem.")


# --- Employees ------------------------------------------------------------------------------


class EmployeeSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    active = serializers.BooleanField(source="user.is_active")

    class Meta:
        model = Employee
        fields = ["id", "username", "mail", "given_name", "surname", "display_name", "department", "directory_dn", "active"]


class EmployeeWriteSerializer(serializers.Serializer):
    mail = MailboxField(help_text="The mailbox the certificates will name; at a domain this CA certifies.")
    given_name = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    surname = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    department = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    directory_dn = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="", help_text="The entry certificates are published to."
    )


class EmployeeCreateSerializer(EmployeeWriteSerializer):
    username = serializers.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="The login name; an account without a password is created when there is none "
        "(the person logs in through the directory).",
    )

    field_order = ["username"]


class EmployeeUpdateSerializer(EmployeeWriteSerializer):
    """PATCH: the fields given replace the stored ones."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False
        for name in ("given_name", "surname", "department", "directory_dn"):
            self.fields[name].default = serializers.empty


class OffboardInputSerializer(serializers.Serializer):
    acknowledge_consequences = serializers.BooleanField(
        default=False,
        help_text="Needed to offboard one of the last approvers that key recovery requires (the 409 says so).",
    )


class OffboardingRequestInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Why the account is offboarded.")


class OffboardingRequestSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField(source="user.username")
    requested_by = serializers.CharField(source="requested_by.username")
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class OffboardSerializer(serializers.Serializer):
    employee = EmployeeSerializer()
    revoked = serializers.ListField(child=serializers.CharField(), help_text="Serials of the certificates revoked now.")


# --- Directory publications -----------------------------------------------------------------


class PublicationSerializer(serializers.ModelSerializer):
    serial = serializers.CharField(source="certificate.serial")
    mailbox = serializers.CharField(source="certificate.mailbox")

    class Meta:
        model = DirectoryPublication
        fields = [
            "id", "serial", "mailbox", "state", "entry_dn", "attempts", "last_error", "last_attempt_at",
            "next_attempt_at", "created_at", "updated_at",
        ]


class PublicationRetrySerializer(serializers.Serializer):
    operation = serializers.CharField(help_text='"publish", "unpublish", or "" when there was nothing to do.')
    ok = serializers.BooleanField()
    error = serializers.CharField(help_text="Why the attempt failed; empty when it succeeded.")
    publication = PublicationSerializer()
