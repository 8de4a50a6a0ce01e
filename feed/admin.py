from django.contrib import admin

from .models import FeedSession, Impression, Signal


class ImpressionInline(admin.TabularInline):
    model = Impression
    fields = ["batch_number", "position", "video", "state", "batch_type", "source", "similarity", "cycle", "withdrawn"]
    readonly_fields = fields
    raw_id_fields = ["video"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class SignalInline(admin.TabularInline):
    model = Signal
    fields = ["created_at", "video", "type", "watched_ms", "state_before", "state_after", "event_id"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(FeedSession)
class FeedSessionAdmin(admin.ModelAdmin):
    """Watch a session walk the machine: its signals and the batches they produced."""

    list_display = ["id", "algorithm", "state", "batch_count", "cycle", "viewer", "updated_at"]
    list_filter = ["algorithm", "state"]
    readonly_fields = ["id", "algorithm", "state", "bucket", "batch_count", "cycle", "viewer", "anonymous_key",
                       "created_at", "updated_at"]
    fields = readonly_fields
    inlines = [SignalInline, ImpressionInline]

    def has_add_permission(self, request):
        return False
