from rest_framework import serializers

from .models import Creator, Video
from .selectors import ShownCreator, ShownVideo


class CreatorSerializer(serializers.ModelSerializer):
    class Meta:
        model = Creator
        fields = [
            "id", "external_id", "handle", "display_name", "bio", "verified",
            "follower_count", "following_count", "heart_count", "video_count",
        ]


class VideoSerializer(serializers.ModelSerializer):
    creator = serializers.SlugRelatedField(slug_field="handle", read_only=True)
    music = serializers.SerializerMethodField()
    hashtags = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    duration = serializers.IntegerField(source="duration_s")
    stats = serializers.SerializerMethodField()

    class Meta:
        model = Video
        fields = ["id", "external_id", "caption", "creator", "music", "hashtags", "duration", "stats", "created_at", "web_url", "cover_url"]

    def get_music(self, video) -> dict | None:
        if video.music is None:
            return None
        return {"name": video.music.name, "author": video.music.author, "original": video.music.original}

    def get_stats(self, video) -> dict:
        return {
            "plays": video.play_count,
            "likes": video.like_count,
            "shares": video.share_count,
            "comments": video.comment_count,
        }


class CatalogVideoSerializer(VideoSerializer):
    """A video as the partner catalog shows it: the feed card's fields, plus the creator's id
    (for ``/api/v1/creators/{id}/``) and the language."""

    creator_id = serializers.IntegerField(read_only=True)

    class Meta(VideoSerializer.Meta):
        fields = VideoSerializer.Meta.fields + ["creator_id", "language"]


class CatalogCreatorSerializer(CreatorSerializer):
    """A creator with their counts: those of the source platform (followers, following, hearts,
    videos posted there) and ``catalog_video_count``, how many of their videos this catalog holds."""

    catalog_video_count = serializers.IntegerField(read_only=True)

    class Meta(CreatorSerializer.Meta):
        fields = CreatorSerializer.Meta.fields + ["language", "country", "catalog_video_count"]


class SimilarityLimitSerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, default=10, min_value=1, max_value=100,
                                     help_text="How many similar items (default 10, at most 100).")


class SimilarVideoSerializer(serializers.Serializer):
    similarity = serializers.FloatField(help_text="Cosine similarity to the video asked about, in [-1, 1].")
    video = CatalogVideoSerializer()


class SimilarVideosSerializer(serializers.Serializer):
    video_id = serializers.IntegerField(help_text="The video asked about (never among the items).")
    items = SimilarVideoSerializer(many=True, help_text="Most similar first.")


class SimilarCreatorSerializer(serializers.Serializer):
    similarity = serializers.FloatField(help_text="Cosine similarity of the creators' vectors, in [-1, 1].")
    creator = CatalogCreatorSerializer()


class SimilarCreatorsSerializer(serializers.Serializer):
    creator_id = serializers.IntegerField(help_text="The creator asked about (never among the items).")
    items = SimilarCreatorSerializer(many=True, help_text="Most similar first.")


# --- The similar lists' items, without DRF's field machinery ------------------------------------
# A similar list is read-only and asked for on every "more like this" a partner shows: building
# its items through the serializers above cost about a third of the request. These give the same
# JSON from the selectors' plain rows (tests/integration/test_similarity_api.py holds them to the
# serializers); the serializers above still describe them in the OpenAPI schema.

#: The one field whose representation is more than the value: DRF's ISO 8601, "Z" for UTC.
_DATETIME = serializers.DateTimeField()


def catalog_video_data(video: ShownVideo) -> dict:
    """``CatalogVideoSerializer(video).data``, for a video read as a ``ShownVideo``."""
    return {
        "id": video.id,
        "external_id": video.external_id,
        "caption": video.caption,
        "creator": video.creator_handle,
        "music": None if video.music_id is None else {
            "name": video.music_name, "author": video.music_author, "original": video.music_original},
        "hashtags": video.hashtag_names,
        "duration": video.duration_s,
        "stats": {"plays": video.play_count, "likes": video.like_count, "shares": video.share_count,
                  "comments": video.comment_count},
        "created_at": _DATETIME.to_representation(video.created_at),
        "web_url": video.web_url,
        "cover_url": video.cover_url,
        "creator_id": video.creator_id,
        "language": video.language,
    }


def catalog_creator_data(creator: ShownCreator) -> dict:
    """``CatalogCreatorSerializer(creator).data``, for a creator read as a ``ShownCreator`` (whose
    fields are the serializer's, in its order)."""
    return creator._asdict()
