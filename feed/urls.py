from django.urls import path

from . import views

urlpatterns = [
    path("", views.feed_page, name="feed"),
    path("feed/events/", views.feed_events, name="feed-events"),
    path("feed/batch/", views.feed_batch, name="feed-batch"),
]
