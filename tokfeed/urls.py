from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from catalog import api as catalog_api

router = DefaultRouter()
router.register("videos", catalog_api.VideoViewSet, basename="video")
router.register("creators", catalog_api.CreatorViewSet, basename="creator")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include(router.urls)),
    path("", include("feed.urls")),
]
