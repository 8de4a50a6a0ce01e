"""Websocket routes of the feed."""
websocket_urlpatterns: list = []
