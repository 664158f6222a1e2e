"""Request filters that apply to every page before any view runs."""

from django.http import HttpResponseBadRequest, JsonResponse


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
