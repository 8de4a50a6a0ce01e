"""Websocket routes of the feed: the viewer's feed, and the operators' live monitor."""
from django.urls import path

from .consumers import FeedConsumer, MonitorConsumer

websocket_urlpatterns = [
    path("ws/feed/", FeedConsumer.as_asgi(), name="feed-socket"),
    path("ws/admin/monitor/", MonitorConsumer.as_asgi(), name="monitor-socket"),
]
