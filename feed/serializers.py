from rest_framework import serializers

from algorithms.machine import BATCH
from catalog.serializers import VideoSerializer
from tokfeed.api_input import IdField, StrictIntegerField, StrictUUIDField

from . import cold_start
from .services import MAX_BUCKET_TEXT_CHARS, MAX_BUCKET_VIDEOS, MAX_WATCHED_MS


class ProfileSerializer(serializers.Serializer):
    """What a new viewer told us (``feed.cold_start``): at least one of these."""

    country = serializers.RegexField(r"^[A-Za-z]{2}$", required=False, help_text="ISO 3166-1 alpha-2, e.g. GB")
    app_version = serializers.RegexField(r"^\d+(\.\d+)*$", max_length=32, required=False,
                                         help_text="the app's version, e.g. 3.2.1 (its major number buckets)")
    interests = serializers.ListField(
        child=serializers.CharField(max_length=cold_start.MAX_INTEREST_CHARS), required=False,
        max_length=cold_start.MAX_INTERESTS, help_text="onboarding interests, e.g. [\"cooking\", \"football\"]")

    def validate(self, data):
        if not data:
            raise serializers.ValidationError("give at least one of country, app_version or interests")
        return data


class BucketSerializer(serializers.Serializer):
    """A cold-start hint: exactly one of a text, some videos, a topic, a commenter or a profile."""

    text = serializers.CharField(required=False, max_length=MAX_BUCKET_TEXT_CHARS,
                                 help_text=f"described interests, at most {MAX_BUCKET_TEXT_CHARS} characters")
    videos = serializers.ListField(child=IdField(), required=False, min_length=1, max_length=MAX_BUCKET_VIDEOS,
                                   help_text=f"ids of videos the viewer likes, at most {MAX_BUCKET_VIDEOS}")
    topic = StrictIntegerField(required=False, min_value=0, help_text="a topic number")
    commenter = serializers.CharField(required=False, max_length=100,
                                      help_text="a commenter's handle: the interest of their last 100 comments")
    profile = ProfileSerializer(required=False, help_text="what a new viewer told us: the session starts from the "
                                                          "centroid of its bucket's top engagers")

    def to_internal_value(self, data):
        if isinstance(data, dict) and (len(data) != 1 or not set(data) <= set(self.fields)):
            raise serializers.ValidationError('give exactly one of "text", "videos", "topic", "commenter" or "profile"',
                                              code="invalid")
        return super().to_internal_value(data)


class SessionCreateSerializer(serializers.Serializer):
    algorithm = serializers.SlugField(required=False, max_length=100, help_text="slug; the default algorithm when omitted")
    bucket = BucketSerializer(required=False)


class SessionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    algorithm = serializers.CharField(source="algorithm.slug")
    state = serializers.CharField()


class SignalInputSerializer(serializers.Serializer):
    video = IdField()
    event_id = StrictUUIDField()
    watched_ms = StrictIntegerField(required=False, min_value=0, max_value=MAX_WATCHED_MS)
    duration_ms = StrictIntegerField(
        required=False, min_value=1, max_value=MAX_WATCHED_MS,
        help_text="with watched_ms: the video's length as played (the catalog's when omitted)",
    )
    type = serializers.RegexField(r"^[A-Za-z_]{1,50}$", required=False, max_length=50,
                                  error_messages={"invalid": "a signal type is letters and underscores"})

    def validate(self, data):
        if ("watched_ms" in data) == ("type" in data):
            raise serializers.ValidationError({"watched_ms": "give exactly one of watched_ms (a view) or type (an action)"})
        if "duration_ms" in data and "watched_ms" not in data:
            raise serializers.ValidationError({"duration_ms": "duration_ms goes with watched_ms (a view)"})
        if data.get("type", "").strip().upper() == BATCH:
            raise serializers.ValidationError({"type": "BATCH is not a signal"})
        return data


class SignalOutcomeSerializer(serializers.Serializer):
    signal = serializers.CharField(allow_null=True)
    state = serializers.CharField()
    duplicate = serializers.BooleanField()


class ReasonSerializer(serializers.Serializer):
    source = serializers.CharField()
    similarity = serializers.FloatField(allow_null=True)


class BatchItemSerializer(VideoSerializer):
    reason = serializers.SerializerMethodField()

    class Meta(VideoSerializer.Meta):
        fields = VideoSerializer.Meta.fields + ["reason"]

    def get_reason(self, video) -> dict:
        item = self.context["items"][video.pk]
        return {"source": item.source, "similarity": item.similarity}


class BatchSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    state = serializers.CharField()
    next_state = serializers.CharField()
    batch_type = serializers.CharField()
    items = serializers.SerializerMethodField()

    def get_items(self, batch) -> list[dict]:
        context = {"items": {item.video.pk: item for item in batch.items}}
        return BatchItemSerializer([item.video for item in batch.items], many=True, context=context).data
