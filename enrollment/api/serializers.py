from cryptography.hazmat.primitives.serialization import Encoding
from rest_framework import serializers

from enrollment.models import Certificate, CertificateRequest
from enrollment.pki.keys import KEY_TYPES
from enrollment.pki.pkcs12 import MIN_PASSPHRASE_LENGTH, PKCS12_FORMATS
from enrollment.pki.profiles import CERTIFICATE_TYPES


class CertificateSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Certificate
        fields = ["serial", "mailbox", "subject", "not_before", "not_after", "status", "fingerprint_sha256"]


class CertificateSerializer(serializers.ModelSerializer):
    pem = serializers.SerializerMethodField()
    issuer = serializers.CharField(source="issuer.common_name")

    class Meta:
        model = Certificate
        fields = [
            "serial", "subject", "mailbox", "issuer", "key_type", "certificate_type", "not_before", "not_after",
            "status", "revoked_at", "revocation_reason", "fingerprint_sha256", "pem",
        ]

    def get_pem(self, obj) -> str:
        return obj.x509.public_bytes(Encoding.PEM).decode()


class CertificateRequestSerializer(serializers.ModelSerializer):
    status = serializers.CharField(source="state")
    mailbox = serializers.CharField(source="employee.mail")
    employee = serializers.CharField(source="employee.user.username")
    submitted_by = serializers.CharField(source="submitted_by.username")
    decided_by = serializers.CharField(source="decided_by.username", default=None)
    certificate = serializers.SerializerMethodField()

    class Meta:
        model = CertificateRequest
        fields = [
            "id", "status", "employee", "mailbox", "key_type", "certificate_type", "submitted_by", "created_at",
            "decided_by", "decided_at", "reason", "certificate",
        ]

    def get_certificate(self, obj):
        certificate = getattr(obj, "certificate", None) if obj.state == CertificateRequest.State.ISSUED else None
        return CertificateSummarySerializer(certificate).data if certificate else None


class CertificateRequestCreateSerializer(serializers.Serializer):
    key_type = serializers.ChoiceField(choices=list(KEY_TYPES), default="rsa-3072")
    certificate_type = serializers.ChoiceField(choices=list(CERTIFICATE_TYPES), default="sponsor-strict")


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, allow_blank=False, trim_whitespace=True)


class Pkcs12Serializer(serializers.Serializer):
    passphrase = serializers.CharField(min_length=MIN_PASSPHRASE_LENGTH, max_length=1024, trim_whitespace=False)
    format = serializers.ChoiceField(choices=list(PKCS12_FORMATS), default="modern")
