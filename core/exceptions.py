"""Errors the services raise; every edge (admin, page, API, command) turns them into a clear message."""

from django.core.exceptions import ValidationError


class PortalError(Exception):
    code = "error"
    http_status = 400
    retry_after: int | None = None  # seconds, for the Retry-After header of an answer that says "try again"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotAllowed(PortalError):
    code = "forbidden"
    http_status = 403


class SeparationOfDuties(NotAllowed):
    code = "separation_of_duties"


class SecondFactorRequired(NotAllowed):
    """A trusted role acting without its second factor, or with a code that is wrong or spent."""

    code = "second_factor_required"


class NotFound(PortalError):
    code = "not_found"
    http_status = 404


class InvalidState(PortalError):
    code = "invalid_state"
    http_status = 409


class AlreadyExists(InvalidState):
    """A second one of something there may be only one of (a database constraint said so: core/db.py)."""

    code = "already_exists"


class IssuanceError(PortalError):
    code = "issuance_failed"
    http_status = 409


class PickupUnavailable(PortalError):
    code = "pickup_unavailable"
    http_status = 410


class ConfigurationError(PortalError):
    code = "configuration"
    http_status = 503


class TryAgain(PortalError):
    """The database aborted the change for a concurrent one, and so did every retry: nothing was changed."""

    code = "try_again"
    http_status = 503
    retry_after = 1


def error_message(exc: Exception, *, separator: str = " ") -> str:
    """What a person is told about a refused service call: a ValidationError's messages or the error's own."""
    if isinstance(exc, ValidationError):
        return separator.join(exc.messages)
    return exc.message if isinstance(exc, PortalError) else str(exc)
