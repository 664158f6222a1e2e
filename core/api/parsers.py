"""The API's JSON parser: DRF's, bounded in size and depth, refusing what no field can hold.

Python's json module recurses once per nesting level, so a body nested a thousand levels deep
raised RecursionError (a 500); DRF reads the body from the stream without Django's
DATA_UPLOAD_MAX_MEMORY_SIZE check; and a JSON escape can name a lone UTF-16 surrogate
("\\ud800"), which is no character: it cannot be encoded into an answer, a log line or a
database row. Each is refused here, as a 400 (413 for the size) in the one error shape,
before any serializer sees the data. A NUL (\\u0000) is refused too: PostgreSQL text cannot
hold one, and no field of the API accepts one (as for addresses: portal.middleware).

    REST_FRAMEWORK = {"DEFAULT_PARSER_CLASSES": ["core.api.parsers.BoundedJSONParser", ...]}
"""

from __future__ import annotations

import json
import math
import re

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser

__all__ = ["MAX_BODY_BYTES", "MAX_DEPTH", "MAX_NUMBER_DIGITS", "BoundedJSONParser", "RequestTooLarge"]

# The deepest body of the API is an object holding a list of objects: 32 is ample.
MAX_DEPTH = 32
# The largest body of the API is a few kilobytes (a reason, a name): 256 KiB is ample.
MAX_BODY_BYTES = 256 * 1024
# An id is a bigint (19 digits); a number longer than this names nothing.
MAX_NUMBER_DIGITS = 40

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_SURROGATE = re.compile("[\ud800-\udfff]")


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def _too_deep(text: str, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit` (brackets inside strings do not count)."""
    depth = 0
    for bracket in _NOT_A_BRACKET.sub("", _STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise ValueError(f"a number has more than {MAX_NUMBER_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > 2 * MAX_NUMBER_DIGITS:
        raise ValueError(f"a number has more than {2 * MAX_NUMBER_DIGITS} characters")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number is out of range")
    return value


def _parse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _unusable_string(value) -> str | None:
    """Why a string somewhere in the parsed data is refused, or None (the data is already depth-bounded)."""
    if isinstance(value, str):
        match = _SURROGATE.search(value)
        if match:
            return f"a string contains a lone UTF-16 surrogate (\\u{ord(match.group()):04x}), which is not a character"
        if "\x00" in value:
            return "a string contains a NUL character (\\u0000), which no field accepts"
        return None
    if isinstance(value, dict):
        items = [item for pair in value.items() for item in pair]
    elif isinstance(value, list):
        items = value
    else:
        return None
    for item in items:
        reason = _unusable_string(item)
        if reason:
            return reason
    return None


class BoundedJSONParser(JSONParser):
    """JSONParser with a size bound, a nesting bound, bounded numbers and only real characters."""

    max_depth = MAX_DEPTH
    max_bytes = MAX_BODY_BYTES

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read(self.max_bytes + 1) if stream is not None else b""
        if len(raw) > self.max_bytes:
            raise RequestTooLarge(f"The request body is larger than {self.max_bytes // 1024} KiB.")
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise exceptions.ParseError(f"JSON parse error - the body is not valid {encoding}.") from None
        if _too_deep(text, self.max_depth):
            raise exceptions.ParseError(
                f"JSON parse error - arrays and objects nest deeper than {self.max_depth} levels."
            )
        try:
            data = json.loads(
                text,
                parse_int=_parse_int,
                parse_float=_parse_float,
                parse_constant=_parse_constant,
            )
        except (ValueError, RecursionError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}.") from None
        reason = _unusable_string(data)
        if reason:
            raise exceptions.ParseError(f"JSON parse error - {reason}.")
        return data
