from rest_framework import serializers

from algorithms.machine import BATCH
from catalog.serializers import VideoSerializer


class SessionCreateSerializer(serializers.Serializer):
    algorithm = serializers.SlugField(required=False, help_text="slug; the default algorithm when omitted")
    bucket = serializers.DictField(required=False, help_text='{"text": ...}, {"videos": [ids]} or {"topic": n}')


class SessionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    algorithm = serializers.CharField(source="algorithm.slug")
    state = serializers.CharField()


class SignalInputSerializer(serializers.Serializer):
    video = serializers.IntegerField()
    event_id = serializers.UUIDField()
    watched_ms = serializers.IntegerField(required=False, min_value=0)
    type = serializers.CharField(required=False, max_length=50)

    def validate(self, data):
        if ("watched_ms" in data) == ("type" in data):
            raise serializers.ValidationError({"watched_ms": "give exactly one of watched_ms (a view) or type (an action)"})
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
