from django.contrib import admin

from tokfeed.admin_views import ComputedRowsAdmin

from .models import Comment, Creator, Hashtag, IngestJob, Music, Topic, Video


@admin.register(Creator)
class CreatorAdmin(admin.ModelAdmin):
    list_display = ["handle", "display_name", "verified", "follower_count", "embedding_model", "embedded_at"]
    list_filter = ["verified", "embedding_model"]
    search_fields = ["handle", "display_name", "bio"]
    readonly_fields = ["embedding_model", "embedding_document_hash", "embedded_at"]


@admin.register(Video)
class VideoAdmin(admin.ModelAdmin):
    list_display = ["external_id", "creator", "short_caption", "play_count", "like_count", "embedding_model", "embedded_at"]
    list_filter = ["embedding_model"]
    search_fields = ["external_id", "caption", "creator__handle"]
    list_select_related = ["creator"]
    raw_id_fields = ["creator", "music"]
    filter_horizontal = ["hashtags"]
    readonly_fields = ["document", "document_hash", "embedding_model", "embedding_document_hash", "embedded_at", "topic"]

    @admin.display(description="caption")
    def short_caption(self, video):
        return video.caption[:60]


@admin.register(Music)
class MusicAdmin(admin.ModelAdmin):
    list_display = ["name", "author", "original"]
    search_fields = ["name", "author"]


@admin.register(Hashtag)
class HashtagAdmin(admin.ModelAdmin):
    list_display = ["name", "video_count"]
    search_fields = ["name"]
    readonly_fields = ["video_count"]  # kept by the database's triggers


@admin.register(Topic)
class TopicAdmin(ComputedRowsAdmin):
    """The k-means topic clusters sampled batches and exploration draw from (``cluster_topics``
    after ``embed``; ingested videos join the nearest)."""

    list_display = ["number", "size", "embedding_model", "computed_at"]
    exclude = ["centroid"]  # 384 numbers: nothing to read


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ["author_handle", "video", "like_count", "created_at"]
    search_fields = ["text", "author_handle"]
    raw_id_fields = ["video"]


@admin.register(IngestJob)
class IngestJobAdmin(ComputedRowsAdmin):
    """Partners' ingestion jobs, to look at: they are made and run by the API and its task."""

    list_display = ["id", "partner", "status", "received", "valid", "created", "updated", "videos_embedded",
                    "created_at"]
    list_filter = ["status", "partner"]
    search_fields = ["id", "partner"]
    exclude = ["records"]  # up to INGEST_MAX_RECORDS raw records: too much for a page
