from django.http import HttpResponseBadRequest, JsonResponse

from escrow.audit import current_source_ip


class AuditSourceMiddleware:
    """Makes the client's address available to audit events recorded during the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = current_source_ip.set(request.META.get("REMOTE_ADDR") or None)
        try:
            return self.get_response(request)
        finally:
            current_source_ip.reset(token)


class RejectNulCharactersMiddleware:
    """A 400 for a NUL character in the path or a query parameter, before any view runs.

    No address or filter of ours holds one, and PostgreSQL text cannot: a NUL that reached a
    query (a serial in the path, an admin list filter) would fail there as a 500.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        fields = {
            key.replace("\x00", "\\x00"): ["A NUL character (%00) is not allowed."]
            for key, values in request.GET.lists()
            if "\x00" in key or any("\x00" in value for value in values)
        }
        if "\x00" in request.path or fields:
            message = "The address contains a NUL character (%00); no page or parameter here accepts one."
            if request.path.startswith("/api/"):
                if fields:  # the API's own shape for invalid parameters: "field: message; ..."
                    message = "; ".join(f"{key}: {' '.join(errors)}" for key, errors in fields.items())
                return JsonResponse({"error": {"code": "invalid", "message": message, "fields": fields}}, status=400)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
