"""File responses: what the browser saves, and key material that no cache keeps."""

from __future__ import annotations

from django.http import HttpResponse


def attachment(data: bytes, content_type: str, filename: str, *, private: bool = False) -> HttpResponse:
    """A download named `filename`; `private` (keys, bundles) forbids every cache to store it."""
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    if private:
        response["Cache-Control"] = "no-store"
    return response
