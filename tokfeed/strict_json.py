"""JSON from clients, read with limits: size, nesting depth, and text PostgreSQL can store.

Every way a client sends JSON (the partner API's parser, the feed's websocket and its HTTP
fallback) reads it through ``loads``, so a body that is too large, nested too deep or carrying a
NUL character or a lone surrogate (which ``json`` accepts and PostgreSQL refuses) is refused
the same way everywhere, with a machine-readable ``code``, before any of it reaches the
database or the embedding model.
"""
from __future__ import annotations

import json

#: Deeper than any payload of ours (a bucket is three levels): past it, a payload is hostile.
MAX_DEPTH = 10


class RefusedJSON(ValueError):
    """A payload refused before use. ``code`` is machine-readable; ``field`` the path at fault."""

    def __init__(self, message: str, *, code: str, field: str | None = None):
        super().__init__(message)
        self.message, self.code, self.field = message, code, field


class TooLarge(RefusedJSON):
    def __init__(self, size: int, limit: int):
        super().__init__(f"the body is {size} bytes; at most {limit} are accepted", code="too_large")


def loads(raw: str | bytes, *, max_bytes: int) -> object:
    """Decode ``raw`` as JSON within the limits above; raises ``RefusedJSON``."""
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise TooLarge(size, max_bytes)
    try:
        data = json.loads(raw)
    except RecursionError:
        raise RefusedJSON(f"JSON nested deeper than {MAX_DEPTH} levels", code="too_deep") from None
    except (TypeError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise RefusedJSON(f"malformed JSON: {exc}", code="malformed_json") from None
    check_value(data)
    return data


def check_value(value: object, path: str = "", depth: int = 1) -> None:
    """Refuse nesting past ``MAX_DEPTH`` and strings PostgreSQL cannot store, naming where."""
    if depth > MAX_DEPTH:
        raise RefusedJSON(f"JSON nested deeper than {MAX_DEPTH} levels", code="too_deep", field=path or None)
    if isinstance(value, str):
        _check_text(value, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, path)
            check_value(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_value(item, f"{path}[{index}]", depth + 1)


def _check_text(text: str, path: str) -> None:
    if "\x00" in text:
        raise RefusedJSON(f"{path or 'text'}: NUL characters are not allowed", code="invalid_text", field=path or None)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RefusedJSON(f"{path or 'text'}: not valid Unicode (a lone surrogate)", code="invalid_text",
                          field=path or None) from None
