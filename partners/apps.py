from django.apps import AppConfig
from django.core import checks


class PartnersConfig(AppConfig):
    name = "partners"
    verbose_name = "Partners"

    def ready(self):
        from .auth import check_api_scopes

        # `manage.py check` (and migrate, runserver) refuse an API view that declares no scope.
        checks.register(check_api_scopes, checks.Tags.urls)
