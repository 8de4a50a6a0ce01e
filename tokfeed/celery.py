"""The Celery application. Configuration comes from Django settings (``CELERY_*``).

With ``LOG_FORMAT=json`` a worker logs through Django's ``LOGGING``, as the web processes do,
instead of adding Celery's own handlers: every line it logs is JSON.
"""
import logging.config
import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tokfeed.settings")

app = Celery("tokfeed")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _use_django_logging(**kwargs):
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


# Read from the environment here because this module is imported before the settings are
# (tokfeed/__init__.py); the settings validate the value.
if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    # A receiver of setup_logging stops Celery from configuring logging itself.
    signals.setup_logging.connect(_use_django_logging, weak=False)
