"""The Content-Security-Policy header (``CONTENT_SECURITY_POLICY``) on every response.

Django 5.2 has no CSP of its own. A page may set a stricter policy for itself (Swagger UI's
assets come from us too, so none needs a looser one).
"""
from django.conf import settings


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY:
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response
