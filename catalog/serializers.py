from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import Creator, IngestJob, Video
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

#: The one field whose representation is more than the value: DRF's ISO 8601, "Z" for UTC. In the
#: default time zone, which is the current one (nothing here activates another), given once: DRF
#: otherwise looks the current one up for every value, most of the field's cost.
_DATETIME = serializers.DateTimeField(default_timezone=timezone.get_default_timezone())


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


# --- Partner ingestion (POST /api/v1/ingest/videos/) ------------------------------------------

_TEXT = {"type": "string"}
_COUNT = {"type": "integer", "minimum": 0}
TRENDING_RECORD_SCHEMA = {
    "type": "object",
    "description": "A video in the TikTok Trending export's shape (what `manage.py import_trending` reads). "
                   "Other keys are ignored.",
    "required": ["id", "authorMeta"],
    "properties": {
        "id": {"type": "string", "description": "The video's id on the source platform."},
        "text": {**_TEXT, "description": "The caption."},
        "createTime": {"type": "integer", "description": "Unix seconds."},
        "authorMeta": {
            "type": "object", "required": ["id", "name"],
            "description": "The creator: created, or updated when its id is known.",
            "properties": {"id": _TEXT, "name": {**_TEXT, "description": "The handle."}, "nickName": _TEXT,
                           "signature": {**_TEXT, "description": "The bio."}, "verified": {"type": "boolean"},
                           "avatar": _TEXT, "fans": _COUNT, "following": _COUNT, "heart": _COUNT, "video": _COUNT},
        },
        "musicMeta": {"type": "object", "properties": {"musicId": _TEXT, "musicName": _TEXT, "musicAuthor": _TEXT,
                                                       "musicOriginal": {"type": "boolean"}}},
        "hashtags": {"type": "array", "items": {"type": "object", "required": ["name"],
                                                "properties": {"name": _TEXT, "id": _TEXT}}},
        "videoMeta": {"type": "object", "properties": {"duration": {**_COUNT, "description": "Seconds."}}},
        "covers": {"type": "object", "properties": {"default": {**_TEXT, "description": "The cover image's URL."}}},
        "playCount": _COUNT, "diggCount": {**_COUNT, "description": "Likes."}, "shareCount": _COUNT,
        "commentCount": _COUNT, "webVideoUrl": _TEXT, "videoUrl": _TEXT,
    },
}


@extend_schema_field(TRENDING_RECORD_SCHEMA)
class TrendingRecordField(serializers.JSONField):
    """One record, taken as it comes: ``catalog.importers.parse_record`` validates it, and a bad
    record is a failure of the job (by index and field), not of the request."""


class IngestBatchSerializer(serializers.Serializer):
    """The batch as a whole: one list of records, under ``videos`` (or ``collector``, as the
    export has it), neither empty nor longer than ``INGEST_MAX_RECORDS``."""

    videos = serializers.ListField(child=TrendingRecordField(), required=False, allow_empty=False,
                                   help_text="The records (at most INGEST_MAX_RECORDS, 1000 by default).")
    collector = serializers.ListField(child=TrendingRecordField(), required=False, allow_empty=False,
                                      help_text="The same, named as the TikTok Trending export names it.")

    def validate(self, data):
        given = [key for key in ("videos", "collector") if key in data]
        if not given:
            raise serializers.ValidationError({"videos": ["send the records as a list under 'videos'"]},
                                              code="required")
        if len(given) > 1:
            raise serializers.ValidationError({"collector": ["send the records under 'videos' or 'collector', "
                                                             "not both"]}, code="invalid")
        key, limit = given[0], settings.INGEST_MAX_RECORDS
        if len(data[key]) > limit:
            raise serializers.ValidationError(
                {key: [f"at most {limit} records in one batch, got {len(data[key])}: send the rest in another"]},
                code="max_length")
        return {"records": data[key]}


class IngestCountsSerializer(serializers.Serializer):
    received = serializers.IntegerField(help_text="Records in the batch.")
    valid = serializers.IntegerField(help_text="Records that passed validation (the job stores these).")
    failed = serializers.SerializerMethodField(help_text="Records listed in `failures`.")
    created = serializers.IntegerField(help_text="Videos stored that were new.")
    updated = serializers.IntegerField(help_text="Videos stored that existed already (their stats refreshed; "
                                                 "a job run again counts what its last run did).")
    videos_embedded = serializers.IntegerField(help_text="Videos whose vector was (re)computed.")
    creators_embedded = serializers.IntegerField(help_text="Creators whose vector was (re)computed.")

    def get_failed(self, job) -> int:
        return len(job.failures)


class IngestPhaseSerializer(serializers.Serializer):
    done = serializers.IntegerField()
    total = serializers.IntegerField(allow_null=True, help_text="Null until the phase before has run.")


class IngestProgressSerializer(serializers.Serializer):
    store = IngestPhaseSerializer(help_text="Valid records upserted.")
    embed_videos = IngestPhaseSerializer(help_text="Stale videos among them embedded.")
    embed_creators = IngestPhaseSerializer(help_text="Stale creators of those videos embedded.")


class IngestFailureSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The record's position in the batch, from 0.")
    field = serializers.CharField(allow_null=True, help_text="Where in the record (a dotted path), or null.")
    message = serializers.CharField()


class IngestJobSerializer(serializers.ModelSerializer):
    """A job's state, as ``GET /api/v1/ingest/jobs/{id}/`` and the 202 of the batch show it."""

    job = serializers.SerializerMethodField(help_text="This job's URL: poll it until `status` is done or failed.")
    counts = IngestCountsSerializer(source="*")
    progress = IngestProgressSerializer()
    failures = IngestFailureSerializer(many=True, help_text="The records not stored, by index and field.")

    class Meta:
        model = IngestJob
        fields = ["job", "id", "status", "counts", "progress", "failures", "error", "created_at", "updated_at",
                  "started_at", "finished_at"]

    def get_job(self, job) -> str:
        return self.context["request"].build_absolute_uri(reverse("ingest-job", args=[job.pk]))
