from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny
from rest_framework.routers import SimpleRouter

from algorithms import api as algorithms_api
from catalog import api as catalog_api
from feed import api as feed_api

from .api_errors import unknown_api_path
from .health import healthz, readyz
from .metrics import metrics_page
from .rate_limits import limit_posts

# No root view at /api/v1/ (DefaultRouter's listed two of the API's five families): the API's
# index is /api/docs/, and every view under /api/v1/ declares the scope it needs (feed.api_auth).
router = SimpleRouter()
router.register("videos", catalog_api.VideoViewSet, basename="video")
router.register("creators", catalog_api.CreatorViewSet, basename="creator")

urlpatterns = [
    # For probes and scrapers (tokfeed.health, tokfeed.metrics): no key, no rate limit, no redirect.
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_page, name="metrics"),
    # Guessing passwords is slowed to the admin_login rate per client address.
    path("admin/login/", limit_posts("admin_login", "login attempts")(admin.site.login)),
    # The operators' A/B pages (traffic split, comparison, simulations), before the admin's
    # catch-all.
    path("admin/dashboard/", include("algorithms.dashboard_urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="schema"),
    # The split view serves its script as a file, so the page needs no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema", permission_classes=[AllowAny]),
         name="api-docs"),
    path("api/v1/sessions/", feed_api.SessionCreateView.as_view(), name="session-create"),
    path("api/v1/sessions/<str:session_id>/batch/", feed_api.SessionBatchView.as_view(), name="session-batch"),
    path("api/v1/sessions/<str:session_id>/signals/", feed_api.SessionSignalsView.as_view(), name="session-signals"),
    path("api/v1/recommendations/", algorithms_api.RecommendationsView.as_view(), name="recommendations"),
    path("api/v1/ingest/videos/", catalog_api.IngestVideosView.as_view(), name="ingest-videos"),
    path("api/v1/ingest/jobs/<str:job_id>/", catalog_api.IngestJobView.as_view(), name="ingest-job"),
    path("api/v1/", include(router.urls)),
    # Any other path under /api/: the API's error shape, DEBUG or not (tokfeed.api_errors).
    re_path(r"^api(?:/.*)?$", unknown_api_path),
    path("", include("feed.urls")),
]

# An unexpected error under /api/ is answered in the API's error shape; elsewhere, Django's page.
handler500 = "tokfeed.api_errors.server_error"
