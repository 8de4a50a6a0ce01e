from django.apps import AppConfig
from django.core import checks


class FeedConfig(AppConfig):
    name = "feed"
    verbose_name = "Feed"

    def ready(self):
        from .api_auth import check_api_scopes

        # `manage.py check` (and migrate, runserver) refuse an API view that declares no scope.
        checks.register(check_api_scopes, checks.Tags.urls)
