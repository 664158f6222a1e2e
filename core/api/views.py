"""What the API views of every app share: lists, file answers, checked ids, bodies and queries.

Views parse and check input, call a service or selector and serialize; who may do what is
decided by the permission classes (core.api.permissions: the role) and by the services and
selectors (the object), and errors.py turns their exceptions into the one JSON error shape.
"""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter
from rest_framework import generics
from rest_framework.views import APIView

from core.exceptions import NotFound

__all__ = [
    "ID_PARAMETER", "MAX_ID", "FileView", "ListView", "checked_id", "id_parameter", "validated_body",
    "validated_query",
]

# Ids are bigint primary keys: anything outside names no row (and would overflow the query).
MAX_ID = 2**63 - 1
ID_PARAMETER = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def id_parameter(name: str, description: str) -> OpenApiParameter:
    """An id in the path, documented with its bounds."""
    return OpenApiParameter(name, ID_PARAMETER, OpenApiParameter.PATH, description=description)


def checked_id(value: int, what: str) -> int:
    """The id from the path, or a 404 naming `what` when no row can have it."""
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"No {what} #{value}.")
    return value


def validated_body(serializer_class, request, **kwargs) -> dict:
    """The request body checked by the serializer (a 400 naming each field otherwise)."""
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def validated_query(serializer_class, request) -> dict:
    """Query parameters that are not a list's filters (those are the view's filterset_class)."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ListView(generics.ListAPIView):
    """A paginated list of get_queryset() in its (stable) order: ?page= and ?page_size= are the
    paginator's, the other query parameters those of the view's filterset_class (django-filter),
    checked before any row is read."""

    filter_backends = [DjangoFilterBackend]


class FileView(APIView):
    """Answers with a file whatever the Accept header says (errors stay JSON)."""

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)
