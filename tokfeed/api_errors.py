"""One error shape for the whole API: ``{"error": message, "field": name or null, "details": ...}``.

Partners get a sentence they can act on and, for bad input, the name of the field at fault;
``details`` keeps DRF's full per-field breakdown.
"""
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from feed.services import FeedError, SessionNotFound


def _first_error(detail, path=""):
    """(field, message) of the first error in a DRF error structure."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = key if key != "non_field_errors" else ""
            return _first_error(value, f"{path}.{field}".strip(".") if field else path)
    if isinstance(detail, list) and detail:
        return _first_error(detail[0], path)
    return path or None, str(detail)


def api_exception_handler(exc, context):
    if isinstance(exc, SessionNotFound):
        return Response({"error": exc.message, "field": None}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, FeedError):
        return Response({"error": exc.message, "field": exc.field}, status=status.HTTP_400_BAD_REQUEST)
    response = exception_handler(exc, context)
    if response is not None:
        field, message = _first_error(response.data)
        if field and field != "detail":
            message = f"{field}: {message}"
        else:
            field = None
        response.data = {"error": message, "field": field, "details": response.data}
    return response
