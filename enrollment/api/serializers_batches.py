"""API v1 serializers of the enrollment batches: the upload that starts one, and a batch with its progress."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from enrollment.models import EnrollmentBatch
from enrollment.models_batches import PROGRESS_STATES
from enrollment.pki.keys import KEY_TYPES
from enrollment.pki.profiles import CERTIFICATE_TYPES

from .serializers import _choice


class BatchStartSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="The CSV (multipart/form-data): columns mail, given_name, surname; optionally username, "
        "department, key_type, certificate_type; a header row; UTF-8."
    )
    key_type = _choice(KEY_TYPES, what="key type", default="rsa-3072", help_text="For rows without one.")
    certificate_type = _choice(
        CERTIFICATE_TYPES, what="certificate type", default="sponsor-strict", help_text="For rows without one."
    )


class BatchFailureSerializer(serializers.Serializer):
    where = serializers.CharField(help_text="The row's line in the file, or the directory entry's DN.")
    username = serializers.CharField()
    mail = serializers.CharField()
    field = serializers.CharField(help_text='The column at fault, or "row" for the whole row.')
    reason = serializers.CharField()


# {"pending": n, "approved": n, ...}: the batch's requests per state.
BatchProgressSerializer = type(
    "BatchProgressSerializer",
    (serializers.Serializer,),
    {state: serializers.IntegerField(help_text=f"Its requests now {state}.") for state in PROGRESS_STATES},
)


class EnrollmentBatchSerializer(serializers.ModelSerializer):
    started_by = serializers.CharField(source="started_by.username")
    progress = serializers.SerializerMethodField(help_text="Its requests per state now (counted when read).")

    class Meta:
        model = EnrollmentBatch
        fields = [
            "id",
            "started_by",
            "started_at",
            "finished_at",
            "source_kind",
            "source",
            "via",
            "key_type",
            "certificate_type",
            "approved_by_policy",
            "rows",
            "created",
            "employees_created",
            "skipped",
            "failed",
            "progress",
        ]

    @extend_schema_field(BatchProgressSerializer)
    def get_progress(self, obj) -> dict:
        return obj.progress()


class EnrollmentBatchDetailSerializer(EnrollmentBatchSerializer):
    failures = BatchFailureSerializer(many=True, help_text="Every failed row, with each reason.")

    class Meta(EnrollmentBatchSerializer.Meta):
        fields = [*EnrollmentBatchSerializer.Meta.fields, "failures"]
