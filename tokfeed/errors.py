"""The one error type of the use cases, and what each kind means to a client.

Services raise ``ServiceError`` (or a subclass) for a request they cannot honour. Every
transport maps it the same way, from its attributes alone: the API through
``tokfeed.api_errors``, the feed's websocket and its HTTP fallback as an error frame.

- ``message``: a sentence a person can act on;
- ``field``: the input at fault, if any;
- ``code``: machine-readable, stable;
- ``status``: the HTTP status it stands for;
- ``retry_after``: seconds after which the same request may succeed (None: it never will).
"""
from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code = "invalid"
    retry_after: int | None = None

    def __init__(self, message: str, field: str | None = None, *, code: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field
        if code is not None:
            self.code = code


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Busy(ServiceError):
    """The thing asked for is held by other work right now: try again in a moment."""

    status = 503
    code = "busy"
    retry_after = 1
