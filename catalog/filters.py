"""The filters of the partner catalog list (``GET /api/v1/videos/``): what each query parameter
means, how a bad value is refused (400, the API's error shape, the parameter named), and the
index that serves it, so that no filter reads the whole catalog.

==============  ====================================================  ===========================
parameter       keeps the videos ...                                  served by
==============  ====================================================  ===========================
hashtag         tagged with it (``#`` optional, any case)              unique index on the tag's
                                                                      name, then the video-tag
                                                                      table's index on the tag
creator         of this creator: a handle (``@`` optional) or an id   ``catalog_video`` creator
                                                                      foreign key index (and the
                                                                      handle index)
language        in this language (exact code, e.g. ``en``)           ``catalog_video_language``
                                                                      (migration 0003)
min_followers   whose creator has at least this many followers       ``catalog_creator_followers``
                                                                      (migration 0003)
created_after   posted at or after this instant                      ``created_at`` index
created_before  posted before this instant                           ``created_at`` index
q               whose caption matches these words (web-search        GIN ``catalog_video_caption_
                syntax: ``"exact phrase"``, ``-word``, ``or``)       search`` (migration 0003)
==============  ====================================================  ===========================

Text search uses PostgreSQL's ``simple`` configuration (no stemming, no stop words): captions mix
languages, and a partner searching ``#fyp``-style words wants them as written. Filters combine
with AND. Dates are ISO 8601; one without a time zone is read in the server's (UTC).
"""
from __future__ import annotations

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db.models import QuerySet
from rest_framework import serializers

from tokfeed.api_input import MAX_ID

#: The text-search configuration of ``q``; the GIN index of migration 0003 is built with it.
SEARCH_CONFIG = "simple"
DATE_FORMATS = ["iso-8601", "%Y-%m-%d"]


def caption_search_vector() -> SearchVector:
    """The indexed expression ``q`` matches against (``to_tsvector('simple', caption)``)."""
    return SearchVector("caption", config=SEARCH_CONFIG)


class VideoFiltersSerializer(serializers.Serializer):
    """The query parameters of the video list (a serializer, so each is documented in the
    OpenAPI schema and validated the way request bodies are)."""

    hashtag = serializers.CharField(required=False, max_length=200, help_text="A hashtag, with or without '#'.")
    creator = serializers.CharField(required=False, max_length=100,
                                    help_text="A creator's handle (with or without '@') or id.")
    language = serializers.CharField(required=False, max_length=16, help_text="A language code, e.g. 'en'.")
    min_followers = serializers.IntegerField(required=False, min_value=0, max_value=MAX_ID,
                                             help_text="Keep videos whose creator has at least this many followers.")
    created_after = serializers.DateTimeField(required=False, input_formats=DATE_FORMATS,
                                              help_text="ISO 8601 date or date-time (inclusive).")
    created_before = serializers.DateTimeField(required=False, input_formats=DATE_FORMATS,
                                               help_text="ISO 8601 date or date-time (exclusive).")
    q = serializers.CharField(required=False, max_length=200,
                              help_text="Words to find in the caption (web-search syntax).")
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=500,
                                         help_text="Videos per page (default 50, at most 500).")

    def validate_hashtag(self, value: str) -> str:
        name = value.strip().lstrip("#").lower()
        if not name:
            raise serializers.ValidationError("name a hashtag, e.g. 'dance'", code="blank")
        return name

    def validate_creator(self, value: str) -> dict:
        value = value.strip()
        if value.isdigit():
            if int(value) > MAX_ID:
                raise serializers.ValidationError("no creator has this id", code="invalid")
            return {"creator_id": int(value)}
        handle = value.lstrip("@")
        if not handle:
            raise serializers.ValidationError("name a creator by handle or id", code="blank")
        return {"creator__handle": handle}

    def validate_q(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("give words to search for", code="blank")
        return value

    def validate(self, data):
        after, before = data.get("created_after"), data.get("created_before")
        if after and before and after >= before:
            raise serializers.ValidationError(
                {"created_before": ["must be later than created_after"]}, code="invalid")
        return data


def filter_videos(videos: QuerySet, filters: dict) -> QuerySet:
    """``videos`` narrowed by validated ``VideoFiltersSerializer`` data (see the table above)."""
    if "hashtag" in filters:
        videos = videos.filter(hashtags__name=filters["hashtag"])
    if "creator" in filters:
        videos = videos.filter(**filters["creator"])
    if "language" in filters:
        videos = videos.filter(language=filters["language"])
    if "min_followers" in filters:
        videos = videos.filter(creator__follower_count__gte=filters["min_followers"])
    if "created_after" in filters:
        videos = videos.filter(created_at__gte=filters["created_after"])
    if "created_before" in filters:
        videos = videos.filter(created_at__lt=filters["created_before"])
    if "q" in filters:
        videos = videos.annotate(caption_search=caption_search_vector()).filter(
            caption_search=SearchQuery(filters["q"], config=SEARCH_CONFIG, search_type="websearch"))
    return videos
