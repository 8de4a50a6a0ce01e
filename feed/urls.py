from django.urls import path

from . import views

urlpatterns = [
    path("", views.feed_page, name="feed"),
    path("feed/events/", views.feed_events, name="feed-events"),
    path("feed/batch/", views.feed_batch, name="feed-batch"),
    path("feed/reset/", views.feed_reset, name="feed-reset"),
    path("liked/", views.liked_page, name="feed-liked"),
]
