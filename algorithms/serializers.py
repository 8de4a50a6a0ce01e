"""What ``POST /api/v1/recommendations/`` accepts and answers (``algorithms.api``)."""
from rest_framework import serializers

from catalog.documents import THIN_INTEREST
from tokfeed.api_input import IdField, StrictIntegerField, StrictUUIDField

from .ranking.funnel import Filters, Rules, Sponsored
from .recommendations import MAX_INTEREST_TEXT_CHARS, MAX_INTEREST_TEXTS, MAX_LIMIT, MAX_QUERY_VIDEOS

#: Blocklists and sponsored slots are a partner's lists, not its catalog: bounded all the same.
MAX_BLOCKED = 500
MAX_SPONSORED = 10
QUERY_FIELDS = ("interest_texts", "commenter", "video_ids", "session")


class FiltersSerializer(serializers.Serializer):
    language = serializers.CharField(required=False, max_length=16,
                                     help_text="the video's language (its creator's when the video has none)")
    min_followers = StrictIntegerField(required=False, min_value=0, max_value=10**12,
                                       help_text="the creator has at least this many followers")
    fresh_within_days = StrictIntegerField(required=False, min_value=1, max_value=100_000,
                                           help_text="posted at most this many days ago")
    blocked_creators = serializers.ListField(child=IdField(), required=False, max_length=MAX_BLOCKED,
                                             help_text="creator ids never recommended")
    blocked_hashtags = serializers.ListField(child=serializers.CharField(max_length=200), required=False,
                                             max_length=MAX_BLOCKED,
                                             help_text="hashtags (case-insensitive, with or without #) never recommended")

    def to_internal_value(self, data):
        return Filters(**super().to_internal_value(data))


class SponsoredSerializer(serializers.Serializer):
    video = IdField()
    position = StrictIntegerField(min_value=1, max_value=MAX_LIMIT, help_text="1-based place on the page")


class RulesSerializer(serializers.Serializer):
    creator_quota = StrictIntegerField(required=False, min_value=1, max_value=MAX_LIMIT,
                                       help_text="at most this many videos per creator")
    sponsored = SponsoredSerializer(many=True, required=False, max_length=MAX_SPONSORED,
                                    help_text="videos placed at fixed positions, whatever their score")

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        sponsored = tuple(Sponsored(**s) for s in values.get("sponsored", ()))
        if len({s.video for s in sponsored}) != len(sponsored) or len({s.position for s in sponsored}) != len(sponsored):
            raise serializers.ValidationError({"sponsored": "each sponsored video and position at most once"})
        return Rules(values.get("creator_quota"), sponsored)


class RecommendationRequestSerializer(serializers.Serializer):
    """Exactly one of ``interest_texts``, ``commenter``, ``video_ids`` or ``session``."""

    interest_texts = serializers.ListField(
        child=serializers.CharField(max_length=MAX_INTEREST_TEXT_CHARS), required=False, min_length=1,
        max_length=MAX_INTEREST_TEXTS, help_text="described interests; the query is the mean of their embeddings")
    commenter = serializers.CharField(
        required=False, max_length=100,
        help_text="a commenter's handle: the query is the mean of the embeddings of their last 100 comments")
    video_ids = serializers.ListField(child=IdField(), required=False, min_length=1, max_length=MAX_QUERY_VIDEOS,
                                      help_text="videos the viewer liked; the query is the mean of their vectors")
    negative_video_ids = serializers.ListField(
        child=IdField(), required=False, max_length=MAX_QUERY_VIDEOS,
        help_text="with video_ids: videos the viewer did not like (their neighbours rank lower)")
    session = StrictUUIDField(required=False, help_text="one of your sessions: its recent signals are the query")
    filters = FiltersSerializer(required=False)
    rules = RulesSerializer(required=False)
    limit = StrictIntegerField(required=False, default=10, min_value=1, max_value=MAX_LIMIT)

    def validate(self, data):
        given = [name for name in QUERY_FIELDS if name in data]
        if len(given) != 1:
            raise serializers.ValidationError(
                {given[1] if given else "interest_texts":
                 'give exactly one of "interest_texts", "commenter", "video_ids" or "session"'},
                code="invalid")
        if "negative_video_ids" in data and "video_ids" not in data:
            raise serializers.ValidationError({"negative_video_ids": "negative_video_ids goes with video_ids"})
        return data


class RecommendedItemSerializer(serializers.Serializer):
    video = serializers.IntegerField(source="id")
    rank = serializers.IntegerField()
    source = serializers.CharField(help_text='"ann" (recalled) or "sponsored"')
    similarity = serializers.FloatField(allow_null=True, help_text="cosine to the query")
    score = serializers.FloatField(allow_null=True, help_text="the reranker's score (null for sponsored videos)")
    parts = serializers.DictField(child=serializers.FloatField(), help_text="the score's parts, each in [0, 1]: the "
                                  "hand-weighted reranker's, or the learned one's features; cross_encoder when one runs")


class StageSerializer(serializers.Serializer):
    name = serializers.CharField()
    received = serializers.IntegerField(help_text="candidates the stage was given (the previous stage's kept)")
    kept = serializers.IntegerField(help_text="candidates it passed on")
    ms = serializers.FloatField()


class InterestSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="the interest texts, comments or liked videos the query pools")
    thin = serializers.BooleanField(help_text=f"fewer than {THIN_INTEREST}: the query says little about the viewer yet")


class RecommendationSerializer(serializers.Serializer):
    items = serializers.SerializerMethodField()
    stages = StageSerializer(many=True)
    reranker = serializers.CharField(help_text='the rerank stage\'s reranker: "learned" (a model trained from the '
                                               'feed\'s log) or "hand_weighted" (before there is one)')
    reranker_model = serializers.IntegerField(allow_null=True, help_text="the learned model's id (null when hand-weighted)")
    interest = InterestSerializer(help_text="what the query was pooled from")

    def get_items(self, recommendation) -> RecommendedItemSerializer(many=True):
        return [
            {"video": c.id, "rank": rank, "source": c.source, "similarity": c.similarity, "score": c.score,
             "parts": dict(c.parts)}
            for rank, c in enumerate(recommendation.items, start=1)
        ]
