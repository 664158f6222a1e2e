"""API v1 views of the directory publications: list, one, retry now.

The other resources are in views_requests.py, views_certificates.py, views_ca.py and
views_employees.py, API tokens in portal.api; what they share is in core.api. Views parse and
check input, call a service or selector, serialize. The role a call needs is a permission
class; who may see or act on one object, the services and selectors decide (their exceptions
become the one JSON error shape in core.api.errors).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.permissions import HasPerm, default_permission_classes
from core.api.schema import error_responses
from core.api.views import ListView, id_parameter
from core.api.views import checked_id as _checked_id
from enrollment.directory.drain import publications_retry

from . import selectors
from .filters import PublicationFilter
from .serializers import PublicationRetrySerializer, PublicationSerializer

PUBLICATION_ID = id_parameter("publication_id", "The publication's id.")
SEE_PUBLICATIONS = HasPerm(
    "enrollment.view_directorypublication", "You may not see directory publications.", methods=["GET"]
)


class PublicationListView(ListView):
    permission_classes = [*default_permission_classes(), SEE_PUBLICATIONS]
    serializer_class = PublicationSerializer
    filterset_class = PublicationFilter

    def get_queryset(self):
        return selectors.publications()

    @extend_schema(
        summary="Directory publications",
        description="Auditors and PKI administrators: whether each certificate is in its owner's directory entry. "
        "Newest first.",
        responses={200: PublicationSerializer(many=True), **error_responses(400, 401, 403, 404)},
    )
    def get(self, request):
        return self.list(request)


class PublicationDetailView(APIView):
    permission_classes = [*default_permission_classes(), SEE_PUBLICATIONS]

    @extend_schema(
        summary="A directory publication",
        parameters=[PUBLICATION_ID],
        responses={200: PublicationSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request, publication_id: int):
        publication = selectors.publication_by_id(publication_id=_checked_id(publication_id, "publication"))
        return Response(PublicationSerializer(publication).data)


class PublicationRetryView(APIView):
    permission_classes = [
        *default_permission_classes(),
        HasPerm("enrollment.retry_directorypublication", "You may not retry directory publications.", methods=["POST"]),
    ]

    @extend_schema(
        summary="Retry a directory publication now",
        description="PKI administrators (perm enrollment.retry_directorypublication). Publishes or removes the "
        "certificate as the row asks and records the outcome; a failed attempt is an answer too (ok: false).",
        request=None,
        parameters=[PUBLICATION_ID],
        responses={200: PublicationRetrySerializer, **error_responses(401, 403, 404, 503)},
    )
    def post(self, request, publication_id: int):
        publication = selectors.publication_by_id(publication_id=_checked_id(publication_id, "publication"))
        (result,) = publications_retry(publication_ids=[publication.pk], actor=request.user).results
        return Response(
            PublicationRetrySerializer(
                {
                    "operation": result.operation,
                    "ok": result.ok,
                    "error": result.error,
                    "publication": selectors.publication_by_id(publication_id=publication.pk),
                }
            ).data
        )
