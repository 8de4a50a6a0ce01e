"""The feed in the operators' admin: each session's timeline ("why this video") and the live monitor.

The monitor (``admin/feed/monitor/``, staff only) is a page of figures that htmx refreshes every
``MONITOR_REFRESH_S`` seconds from a fragment (``feed.monitor_queries``: indexed reads of the last
15 minutes), beside a list of the latest events that the event stream pushes over a staff-only
websocket (``feed.consumers.MonitorConsumer``). The figures poll rather than ride on the stream:
a poll needs nothing but the database, so it stays right with the in-memory channel layer, several
server processes or a layer that is down, and missed events never skew it.

Partner keys are issued, scoped and revoked here, their one place: the library's
``APIKeyModelAdmin`` shows a new key once, in a message, on creation; its own ``APIKey`` admin is
taken off the site (those keys moved to ``PartnerKey``, migration 0008).
"""
from django.contrib import admin
from django.shortcuts import render
from django.urls import path
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from tokfeed.admin_views import ComputedRowsAdmin

from . import monitor_queries
from .models import SCOPES, BucketCentroid, FeedSession, Impression, PartnerKey, Signal, scope_field
from .timeline import session_timeline

#: How often the monitor's figures refresh themselves.
MONITOR_REFRESH_S = 5


class ImpressionInline(admin.TabularInline):
    model = Impression
    fields = ["batch_number", "position", "video", "state", "batch_type", "source", "similarity", "score", "cycle",
              "withdrawn"]
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
    """Watch a session walk the machine: its timeline of batches (why each video) and signals."""

    list_display = ["id", "algorithm", "state", "batch_count", "cycle", "viewer", "updated_at"]
    list_filter = ["algorithm", "state"]
    readonly_fields = ["id", "algorithm", "state", "bucket", "batch_count", "cycle", "viewer", "anonymous_key",
                       "created_at", "updated_at"]
    fields = readonly_fields
    inlines = [SignalInline, ImpressionInline]
    change_form_template = "admin/feed/feedsession/change_form.html"
    change_list_template = "admin/feed/feedsession/change_list.html"

    def has_add_permission(self, request):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        session = self.get_object(request, object_id)
        extra_context = {**(extra_context or {}),
                         "timeline": session_timeline(session) if session is not None else []}
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        # admin_view: staff only (others are sent to the admin's login), never cached.
        monitor = [
            path("monitor/", self.admin_site.admin_view(self.monitor_view), name="feed_monitor"),
            path("monitor/figures/", self.admin_site.admin_view(self.monitor_figures_view),
                 name="feed_monitor_figures"),
        ]
        return monitor + super().get_urls()

    def monitor_view(self, request):
        return render(request, "admin/feed/monitor/page.html", {
            **self.admin_site.each_context(request),
            "title": "Live monitor",
            "figures": monitor_queries.monitor_figures(),
            "refresh_s": MONITOR_REFRESH_S,
            "opts": self.model._meta,
        })

    def monitor_figures_view(self, request):
        return render(request, "admin/feed/monitor/_figures.html", {
            "figures": monitor_queries.monitor_figures(),
        })


admin.site.unregister(APIKey)

SCOPE_FIELDS = tuple(scope_field(scope) for scope in SCOPES)


@admin.register(PartnerKey)
class PartnerKeyAdmin(APIKeyModelAdmin):
    list_display = ("name", "prefix", "scope_list", "created", "expiry_date", "_has_expired", "revoked")
    list_filter = ("created", "revoked", *SCOPE_FIELDS)
    fieldsets = (
        (None, {"fields": ("name", "prefix", "expiry_date", "revoked")}),
        ("Scopes", {"fields": SCOPE_FIELDS,
                    "description": "What the key may call. Each API endpoint needs one scope (see /api/docs/)."}),
    )

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return (*fields, *SCOPE_FIELDS) if obj is not None and obj.revoked else fields

    @admin.display(description="scopes")
    def scope_list(self, key: PartnerKey) -> str:
        return ", ".join(key.scopes) or "none"


@admin.register(BucketCentroid)
class BucketCentroidAdmin(ComputedRowsAdmin):
    """Where new sessions of each cold-start bucket start (``feed.refresh_bucket_centroids``,
    every ``COLD_START_REFRESH_S``); ``*`` is the global centroid."""

    list_display = ["key", "engagers", "embedding_model", "computed_at"]
    search_fields = ["key"]
    exclude = ["centroid"]  # 384 numbers: nothing to read
