"""Read-only catalog endpoints for partners: videos and creators."""
from rest_framework import viewsets
from rest_framework.pagination import PageNumberPagination

from .models import Creator, Video
from .serializers import CreatorSerializer, VideoSerializer


class CatalogPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class VideoViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = VideoSerializer
    pagination_class = CatalogPagination
    queryset = Video.objects.select_related("creator", "music").prefetch_related("hashtags").order_by("id")


class CreatorViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CreatorSerializer
    pagination_class = CatalogPagination
    queryset = Creator.objects.order_by("id")
