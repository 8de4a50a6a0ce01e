"""The one error type of the use cases, and what each kind means to a client.

Services raise ``ServiceError`` (or a subclass) for a request they cannot honour. Every
transport maps it the same way, from its attributes alone: the API through
``tokfeed.api_errors``, the feed's websocket and its HTTP fallback as an error frame.

- ``message``: a sentence a person can act on;
- ``field``: the input at fault, if any;
- ``code``: machine-readable, stable;
- ``status``: the HTTP status it stands for;
- ``retry_after``: seconds after which the same request may succeed (None: it never will);
  ``retry_after_ms`` the same in milliseconds (the websocket's frames say it that finely).
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

    @property
    def retry_after_ms(self) -> int | None:
        return None if self.retry_after is None else self.retry_after * 1000


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Busy(ServiceError):
    """The thing asked for is held by other work right now: try again in a moment."""

    status = 503
    code = "busy"
    retry_after = 1


class Overloaded(ServiceError):
    """This process is at its capacity (``tokfeed.capacity``): nothing was done; send the same
    request again after ``retry_after_ms``. Refused at once, so a client waits for the retry
    delay it is told rather than in a queue nobody sees."""

    status = 503
    code = "overloaded"

    def __init__(self, retry_after_ms: int):
        super().__init__("the server is at capacity: nothing was done; send it again after the delay given")
        self._retry_after_ms = retry_after_ms
        self.retry_after = max(1, -(-retry_after_ms // 1000))  # HTTP's Retry-After: whole seconds, rounded up

    @property
    def retry_after_ms(self) -> int:
        return self._retry_after_ms


class Unavailable(ServiceError):
    """No database connection came in time (``tokfeed.unavailable``): nothing was done."""

    status = 503
    code = "unavailable"
    retry_after = 2
