"""The audit log for auditors: GET only, as JSON pages or as one streamed CSV.

Nobody writes through here; PUT, PATCH, POST and DELETE are 405 for everyone.
"""

from django.http import StreamingHttpResponse
from django.utils import timezone
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.settings import api_settings

from audit import selectors
from audit.services import AUDIT_EXPORT_COLUMNS, audit_export_csv
from core.api.permissions import default_permission_classes
from core.api.schema import error_responses
from core.api.views import ListView

from .filters import AuditEventFilter
from .permissions import IsAuditor
from .serializers import AuditEventSerializer


class AuditCsvRenderer(BaseRenderer):
    """Selects CSV (`?format=csv`, `Accept: text/csv`); the view streams the body itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        raise NotImplementedError("audit CSV is streamed by the view")


class CsvOnly(BaseContentNegotiation):
    """audit-events.csv is CSV whatever the client's Accept header says."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def json_errors(*codes: int) -> dict:
    """Errors are JSON whatever was asked for (see handle_exception)."""
    return {(code, "application/json"): response for code, response in error_responses(*codes).items()}


class AuditEventListView(ListView):
    serializer_class = AuditEventSerializer
    permission_classes = [*default_permission_classes(), IsAuditor]
    renderer_classes = [JSONRenderer, AuditCsvRenderer]
    filterset_class = AuditEventFilter

    def get_queryset(self):
        return selectors.audit_events()

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # who asks first: a stranger learns no parameter names
        self.unknown_parameters_refuse()

    def unknown_parameters_refuse(self) -> None:
        """A misspelt filter (`?from=`, `?timestamp__gte=`) is a 400: ignored, it would list everything."""
        filters = sorted(self.filterset_class.base_filters)
        known = {*filters, api_settings.URL_FORMAT_OVERRIDE}
        if self.paginator is not None:
            known |= {self.paginator.page_query_param, self.paginator.page_size_query_param}
        unknown = sorted(set(self.request.query_params) - known)
        if unknown:
            message = f"Not a filter of the audit log; its filters are {', '.join(filters)}."
            raise ValidationError({name[:64]: [message] for name in unknown[:5]})

    def checked_filters(self) -> AuditEventFilter:
        """The query's filters, checked as for the JSON list (a 400 naming the field otherwise)."""
        filterset = self.filterset_class(self.request.query_params, queryset=self.get_queryset(), request=self.request)
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        return filterset

    def handle_exception(self, exc):
        # Errors are JSON even when CSV was asked for.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)

    def csv_response(self) -> StreamingHttpResponse:
        filters = self.checked_filters()
        lines = audit_export_csv(actor=self.request.user, events=filters.qs, via="api", filters=filters.given())
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="audit-events-{stamp}.csv"'
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(
        summary="List audit events",
        description="Auditors only. Oldest first (id order, which is the hash chain's order), paginated; "
        "`?format=csv` returns all matching events as one streamed CSV with the columns "
        + ", ".join(AUDIT_EXPORT_COLUMNS)
        + ".",
        responses={
            (200, "application/json"): AuditEventSerializer(many=True),
            (200, "text/csv"): OpenApiTypes.STR,
            **json_errors(400, 401, 403, 404),
        },
    )
    def get(self, request, *args, **kwargs):
        if request.accepted_renderer.format == "csv":
            return self.csv_response()
        return self.list(request, *args, **kwargs)


class AuditEventCsvView(AuditEventListView):
    renderer_classes = [AuditCsvRenderer]
    content_negotiation_class = CsvOnly
    pagination_class = None

    @extend_schema(
        summary="Export audit events as CSV",
        description="Auditors only. All events matching the filters, oldest first, streamed as CSV with the "
        "columns " + ", ".join(AUDIT_EXPORT_COLUMNS) + ". Cells that a spreadsheet would run as a formula "
        "(starting with = + - @) are prefixed with '. The export is itself recorded as an audit event.",
        filters=True,
        responses={(200, "text/csv"): OpenApiTypes.STR, **json_errors(400, 401, 403)},
    )
    def get(self, request, *args, **kwargs):
        return self.csv_response()
