"""One error shape for the whole API: ``{"error", "field", "code", "details"}``.

Partners get a sentence they can act on (``error``), the field at fault for bad input
(``field``, a dotted path, or null; an item of a list is its index, ``video_ids.0``,
``rules.sponsored.1.position``), a machine-readable ``code`` (DRF's codes such as
``required``, ``invalid``, ``not_authenticated``, ``throttled``, and the use cases' own,
``tokfeed.errors``), and ``details``: DRF's full per-field breakdown, or null.

A path under ``/api/`` that names no endpoint is a 404 in the same shape (``not_found``), with
``DEBUG`` on too (it is the last URL pattern, not Django's 404 handler, whose technical page wins
then), and an unexpected error there a 500 (``internal_error``; its traceback goes to the
``django.request`` log, never to the partner).
"""
from django.conf import settings
from django.http import HttpResponsePermanentRedirect, JsonResponse
from django.urls import is_valid_path
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import server_error as django_server_error
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler

from .errors import ServiceError


def _first_error(detail, path=""):
    """(field, message, code) of the first error in a DRF error structure.

    DRF reports a field's errors as a list of messages, a serializer's as a dict of fields, a
    ``ListField``'s as a dict of the failing items' indices, and a ``many=True`` serializer's
    as a list with one entry per item (empty for an item without errors).
    """
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == "non_field_errors":
                return _first_error(value, path)
            if value:
                return _first_error(value, f"{path}.{key}" if path else str(key))
    if isinstance(detail, list):
        for index, item in enumerate(detail):
            if not isinstance(item, (dict, list)):
                return _first_error(item, path)  # a field's messages: the first
            if item:
                return _first_error(item, f"{path}.{index}" if path else str(index))
    return path or None, str(detail), getattr(detail, "code", None) or "invalid"


class ErrorSerializer(serializers.Serializer):
    """The one error shape, for the OpenAPI schema (every endpoint's error responses name it)."""

    error = serializers.CharField(help_text="What went wrong, in a sentence.")
    field = serializers.CharField(allow_null=True, help_text="The input at fault (a dotted path), or null.")
    code = serializers.CharField(help_text="Machine-readable and stable, e.g. 'invalid', 'not_found'.")
    details = serializers.JSONField(allow_null=True, help_text="Every field's errors, or null.")


def error_body(message: str, field: str | None, code: str, details=None) -> dict:
    return {"error": message, "field": field, "code": code, "details": details}


def api_exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        response = Response(error_body(exc.message, exc.field, exc.code), status=exc.status)
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        return response
    response = exception_handler(exc, context)
    if response is not None:
        field, message, code = _first_error(response.data)
        if field and field != "detail":
            message = f"{field}: {message}"
        else:
            field = None
        details = response.data if isinstance(response.data, (dict, list)) and field else None
        response.data = error_body(message, field, code, details)
    return response


def _is_api(request) -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


@csrf_exempt  # a partner's POST to a wrong path learns the path is wrong, not that a CSRF token is missing
def unknown_api_path(request):
    """The last URL pattern under ``/api/``: no endpoint there, in the error shape.

    As it matches every such path, ``CommonMiddleware`` no longer appends a missing slash there;
    it does it here, the same way: ``/api/v1/creators`` still redirects to ``/api/v1/creators/``.
    """
    if settings.APPEND_SLASH and not request.path_info.endswith("/"):
        match = is_valid_path(request.path_info + "/", getattr(request, "urlconf", None))
        if match and match.func is not unknown_api_path:
            return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
    return JsonResponse(error_body(f"there is no API endpoint at {request.path}: see /api/docs/", None,
                                   "not_found"), status=404)


def server_error(request):
    """Django's 500 handler (``handler500``): under ``/api/``, the error shape; elsewhere, its page."""
    if _is_api(request):
        return JsonResponse(error_body("the server failed to answer this request; it is logged, and the same "
                                       "request may be sent again", None, "internal_error"), status=500)
    return django_server_error(request)
