from rest_framework import serializers

from .models import Creator, Video


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
