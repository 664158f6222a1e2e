from rest_framework import serializers

from enrollment.pki.pkcs12 import MIN_PASSPHRASE_LENGTH, PKCS12_FORMATS
from escrow.models import RecoveryDecision, RecoveryRequest


class RecoveryDecisionSerializer(serializers.ModelSerializer):
    approver = serializers.CharField(source="approver.username")

    class Meta:
        model = RecoveryDecision
        fields = ["approver", "decision", "comment", "at"]


class RecoveredKeySerializer(serializers.Serializer):
    certificate = serializers.CharField(source="certificate.serial")
    expires_at = serializers.DateTimeField()
    download_count = serializers.IntegerField()


class RecoveryRequestSerializer(serializers.ModelSerializer):
    certificate = serializers.CharField(source="certificate.serial", default=None, allow_null=True)
    employee = serializers.CharField(source="employee.user.username")
    mailbox = serializers.CharField(source="employee.mail")
    requested_by = serializers.CharField(source="requested_by.username")
    recipient = serializers.CharField(source="recipient.username")
    completed_by = serializers.CharField(source="completed_by.username", default=None, allow_null=True)
    approvals = serializers.SerializerMethodField()
    decisions = RecoveryDecisionSerializer(many=True, read_only=True)
    recovered_keys = RecoveredKeySerializer(source="pickups", many=True, read_only=True)

    class Meta:
        model = RecoveryRequest
        fields = [
            "id", "status", "purpose", "certificate", "employee", "mailbox", "reason", "requested_by", "recipient",
            "required_approvals", "approvals", "decisions", "created_at", "decided_at", "completed_at",
            "completed_by", "recovered_keys",
        ]

    def get_approvals(self, obj) -> int:
        annotated = getattr(obj, "approvals", None)
        if annotated is not None:
            return annotated
        return obj.decisions.filter(decision=RecoveryDecision.Decision.APPROVE).count()


class RecoveryCreateSerializer(serializers.Serializer):
    certificate = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="Serial (hex) of the certificate whose key to recover."
    )
    employee = serializers.CharField(
        required=False, allow_blank=True, max_length=150,
        help_text="Instead of a certificate: the username whose escrowed keys (all of them) to recover.",
    )
    reason = serializers.CharField(max_length=2000, trim_whitespace=True)
    recipient = serializers.CharField(
        required=False, allow_blank=True, max_length=150,
        help_text="Username who receives the keys; default: the owner (own key, admin) or the requester (legal hold).",
    )
    purpose = serializers.ChoiceField(choices=RecoveryRequest.Purpose.choices, required=False, allow_blank=True)

    def validate(self, attrs):
        if bool(attrs.get("certificate")) == bool(attrs.get("employee")):
            raise serializers.ValidationError(
                {"certificate": ["Name either a certificate (its serial) or an employee (all their escrowed keys)."]}
            )
        return attrs


class RecoveryDecisionInputSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, trim_whitespace=True)


class RecoveryRejectSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=2000, allow_blank=False, trim_whitespace=True)


class RecoveryCompleteSerializer(serializers.Serializer):
    agent_pkcs12 = serializers.FileField(help_text="The key recovery agent's PKCS#12 (not stored).")
    passphrase = serializers.CharField(max_length=1024, trim_whitespace=False, style={"input_type": "password"})


class RecoveryPkcs12Serializer(serializers.Serializer):
    passphrase = serializers.CharField(min_length=MIN_PASSPHRASE_LENGTH, max_length=1024, trim_whitespace=False)
    format = serializers.ChoiceField(choices=list(PKCS12_FORMATS), default="modern")
    certificate = serializers.CharField(
        required=False, allow_blank=True, max_length=64,
        help_text="Serial of the key to download when the recovery holds several.",
    )
