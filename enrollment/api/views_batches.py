"""API v1: enrollment batches (list, one with its failures, start one from an uploaded CSV).

Reading: whoever sees every request (approvers, auditors, PKI administrators), as in the admin.
Starting: PKI administrators (the service, enrollment.bulk_batches.enrollment_batch_run, checks again).
The rows are written in the request; issuance of requests approved by policy goes to the workers.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.permissions import HasPerm, default_permission_classes
from core.api.schema import error_responses
from core.api.views import ListView, checked_id, id_parameter, validated_body
from core.exceptions import NotFound
from enrollment.bulk import WEB_ISSUANCE_LIMIT, BulkFileRefused, bulk_file_read
from enrollment.bulk_batches import enrollment_batch_run
from enrollment.models import EnrollmentBatch

from .serializers_batches import BatchStartSerializer, EnrollmentBatchDetailSerializer, EnrollmentBatchSerializer

BATCH_ID = id_parameter("batch_id", "The batch's id.")
SEE_BATCHES = HasPerm("enrollment.view_certificaterequest", "You may not see enrollment batches.", methods=["GET"])
START_BATCHES = HasPerm(
    "enrollment.add_employee", "Only PKI administrators start enrollment batches.", methods=["POST"]
)


def _batches():
    return EnrollmentBatch.objects.with_progress().select_related("started_by").order_by("-started_at", "-id")


def _batch(batch_id: int) -> EnrollmentBatch:
    batch = _batches().filter(pk=checked_id(batch_id, "batch")).first()
    if batch is None:
        raise NotFound(f"No batch #{batch_id}.")
    return batch


class BatchListCreateView(ListView):
    permission_classes = [*default_permission_classes(), SEE_BATCHES, START_BATCHES]
    serializer_class = EnrollmentBatchSerializer
    parser_classes = [MultiPartParser]

    def get_queryset(self):
        return _batches()

    @extend_schema(
        summary="Enrollment batches",
        description="Approvers, auditors and PKI administrators: each bulk enrollment with its counts and the "
        "progress of its requests. Newest first.",
        responses={200: EnrollmentBatchSerializer(many=True), **error_responses(400, 401, 403, 404)},
    )
    def get(self, request):
        return self.list(request)

    @extend_schema(
        summary="Start an enrollment batch from a CSV file",
        description="PKI administrators. Every good row becomes an employee and a request filed by the caller; "
        "people already enrolled are skipped; bad rows are in `failures` (line, field, reason). The requests wait "
        "for an approver, or with PORTAL_ENROLLMENT_AUTO_APPROVE are approved by policy and issued by the workers "
        f"(without a task queue: at most {WEB_ISSUANCE_LIMIT} rows, else 409). A file that is not a CSV of this "
        "form is a 400 naming the problem in `fields.file`.",
        request={"multipart/form-data": BatchStartSerializer},
        responses={201: EnrollmentBatchDetailSerializer, **error_responses(400, 401, 403, 409)},
    )
    def post(self, request):
        data = validated_body(BatchStartSerializer, request)
        upload = data["file"]
        try:
            rows = bulk_file_read(upload.read(), name=upload.name)
        except BulkFileRefused as exc:
            raise ValidationError({"file": str(exc)}) from None
        outcome = enrollment_batch_run(
            actor=request.user,
            rows=rows,
            source=upload.name,
            via=EnrollmentBatch.Via.API,
            key_type=data["key_type"],
            certificate_type=data["certificate_type"],
            in_process_issuance_limit=WEB_ISSUANCE_LIMIT,
        )
        return Response(EnrollmentBatchDetailSerializer(_batch(outcome.batch.pk)).data, status=status.HTTP_201_CREATED)


class BatchDetailView(APIView):
    permission_classes = [*default_permission_classes(), SEE_BATCHES]

    @extend_schema(
        summary="An enrollment batch",
        description="Its counts, every failed row, and the progress of its requests (counted now).",
        parameters=[BATCH_ID],
        responses={200: EnrollmentBatchDetailSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request, batch_id: int):
        return Response(EnrollmentBatchDetailSerializer(_batch(batch_id)).data)
