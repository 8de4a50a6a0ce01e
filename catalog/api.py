"""Catalog endpoints for partners: videos (filtered, cursor-paginated), creators with their
counts, and "more like this" for both, read-only; and ingestion, where a partner sends a batch of
videos (``catalog.ingestion``) and polls the job that stores and embeds them.

Every successful read carries an ``ETag`` (a hash of the body) and ``Cache-Control: public,
max-age=300`` (the 5-minute TTL of the build guide) and ``Vary: Authorization``, so an edge
cache can absorb each partner's repeats without serving them to anyone else, and a
client that sends ``If-None-Match`` with the tag it holds is answered ``304 Not Modified``
(Django's ``ConditionalGetMiddleware``, applied to these views only: ``CacheableReadsMixin``). Errors are not to be
stored (``no-store``) and carry no ETag.
"""
from django.middleware.http import ConditionalGetMiddleware
from django.utils.cache import patch_cache_control, patch_vary_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound as DRFNotFound
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from feed.api_auth import partner_of
from tokfeed.api_errors import ErrorSerializer
from tokfeed.api_input import MAX_ID, StrictJSONParser
from tokfeed.errors import NotFound

from . import ingestion, selectors
from .filters import VideoFiltersSerializer, filter_videos
from .models import Creator, Video
from .serializers import (
    CatalogCreatorSerializer,
    CatalogVideoSerializer,
    IngestBatchSerializer,
    IngestJobSerializer,
    SimilarCreatorsSerializer,
    SimilarityLimitSerializer,
    SimilarVideosSerializer,
    catalog_creator_data,
    catalog_video_data,
)

#: Seconds an edge cache (or a client) may reuse a catalog or similarity read.
CATALOG_MAX_AGE = 300


class CatalogCursorPagination(CursorPagination):
    """Pages in a stable order (newest added first, by id: unique and never changes), so a
    partner walking the catalog while it grows sees each video once. A cursor or page size that
    is not one of ours is refused (400), not silently replaced by the first page."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except DRFNotFound:
            raise ValidationError({"cursor": ["this is not a cursor from a previous page"]}, code="invalid") from None

    def get_page_size(self, request):
        if self.page_size_query_param not in request.query_params:
            return self.page_size
        size = serializers.IntegerField(min_value=1, max_value=self.max_page_size)
        try:
            return size.run_validation(request.query_params[self.page_size_query_param])
        except ValidationError as exc:
            raise ValidationError({self.page_size_query_param: exc.detail}) from None


class CacheableReadsMixin:
    """``Cache-Control: public, max-age=300`` on successful reads (ETag/304: see the module), and
    pages and details read as plain rows (``shown_rows``, ``shown_data``; 404 in our error shape
    for an unknown or malformed id).

    Errors are ``no-store`` (which also keeps the ETag off them): a refused key or a throttled
    request is about that request, and no cache may answer the next one with it.
    """

    #: Pages and details: the ids a page or path finds are read by ``shown_rows`` (a selector giving
    #: plain rows, in the ids' order; see ``selectors.shown_videos`` for why) and given their JSON
    #: by ``shown_data``, as the similar lists' items are.
    shown_rows = None
    shown_data = None

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([self.shown_data(row)
                                            for row in self.shown_rows([item.id for item in page])])

    def retrieve(self, request, *args, **kwargs):
        """The row of the path's id, or 404 in our error shape (never DRF's 404 page or a 500)."""
        pk = _row_id(self.kwargs["pk"])
        found = self.shown_rows([pk])
        if not found:
            raise NotFound(f"there is no {self.queryset.model._meta.verbose_name} with id {pk}")
        return Response(self.shown_data(found[0]))

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method in ("GET", "HEAD") and response.status_code == 200:
            patch_cache_control(response, public=True, max_age=CATALOG_MAX_AGE)
            # ``public`` lets a shared cache store a response to a request with a key; varying on
            # the key keeps it from answering a request without one (or with another partner's).
            patch_vary_headers(response, ("Authorization",))
        else:
            patch_cache_control(response, no_store=True)
        # The ETag (of the rendered body) and the 304, once the response is rendered.
        if callable(getattr(response, "render", None)):
            response.add_post_render_callback(lambda rendered: _CONDITIONAL_GET.process_response(request, rendered))
            return response
        return _CONDITIONAL_GET.process_response(request, response)


#: Its response half, made once: as a view decorator (``decorator_from_middleware``) it was made
#: anew for every request, with the wrappers around it (~4% of a similar read's server CPU).
_CONDITIONAL_GET = ConditionalGetMiddleware(lambda request: None)  # its get_response is never called


def _row_id(pk: str) -> int:
    """A path's id, or 404 (not 500) for one that is no id of ours."""
    if not pk.isdigit() or int(pk) > MAX_ID:
        raise NotFound(f"there is no such id: {pk!r}")
    return int(pk)


#: The ``limit`` query parameter (``SimilarityLimitSerializer``'s one field), built once: a
#: serializer per request costs more than the rest of the similar view around its statement.
_LIMIT_FIELD = SimilarityLimitSerializer().fields["limit"]


def _limit(request) -> int:
    """The ``limit`` query parameter as ``SimilarityLimitSerializer`` reads it (absent or blank:
    its default); 400 naming ``limit`` otherwise."""
    try:
        return _LIMIT_FIELD.run_validation(_LIMIT_FIELD.get_value(request.query_params))
    except ValidationError as exc:
        raise ValidationError({"limit": exc.detail}) from None


ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="A query parameter is invalid (named in `field`).",
                         examples=[OpenApiExample("bad filter", value={
                             "error": "min_followers: A valid integer is required.", "field": "min_followers",
                             "code": "invalid", "details": {"min_followers": ["A valid integer is required."]}})]),
    404: OpenApiResponse(ErrorSerializer, description="No such id.",
                         examples=[OpenApiExample("unknown id", value={
                             "error": "there is no video with id 999999", "field": None, "code": "not_found",
                             "details": None})]),
    409: OpenApiResponse(ErrorSerializer, description="It has no embedding yet (`code`: `not_embedded`).",
                         examples=[OpenApiExample("not embedded yet", value={
                             "error": "video 12 has no embedding yet: try again once its embedding job has run",
                             "field": None, "code": "not_embedded", "details": None})]),
}
CACHE_NOTE = ("Carries an ETag and `Cache-Control: public, max-age=300`; send the ETag back in "
              "`If-None-Match` to get `304 Not Modified` while it has not changed.")
LIMIT = OpenApiParameter("limit", OpenApiTypes.INT, description="How many (default 10, at most 100).")


@extend_schema_view(
    list=extend_schema(
        summary="List videos",
        description="Filtered, newest added first, in pages (follow `next`). " + CACHE_NOTE,
        parameters=[VideoFiltersSerializer(partial=True)],
        responses={200: CatalogVideoSerializer(many=True), 400: ERRORS[400]},
    ),
    retrieve=extend_schema(summary="One video", description=CACHE_NOTE,
                           responses={200: CatalogVideoSerializer, 404: ERRORS[404]}),
)
class VideoViewSet(CacheableReadsMixin, viewsets.ReadOnlyModelViewSet):
    api_scope = "read"
    serializer_class = CatalogVideoSerializer
    pagination_class = CatalogCursorPagination
    # Filters and pages find the ids (``CacheableReadsMixin``: what is shown of them is read apart).
    queryset = Video.objects.only("id")
    shown_rows, shown_data = staticmethod(selectors.shown_videos), staticmethod(catalog_video_data)

    def get_queryset(self):
        videos = super().get_queryset()
        if self.action == "list":
            filters = VideoFiltersSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            videos = filter_videos(videos, filters.validated_data)
        return videos

    @extend_schema(
        summary="More like this",
        description="The videos nearest to this one by content vector (itself excluded), each with its "
                    "cosine similarity, most similar first. " + CACHE_NOTE,
        parameters=[LIMIT],
        responses={200: OpenApiResponse(SimilarVideosSerializer, examples=[OpenApiExample("similar", value={
            "video_id": 12, "items": [{"similarity": 0.83, "video": {
                "id": 40, "external_id": "6829540328", "caption": "dance challenge #fyp", "creator": "someone",
                "music": {"name": "original sound", "author": "someone", "original": True},
                "hashtags": ["fyp"], "duration": 15, "stats": {"plays": 1200, "likes": 300, "shares": 4, "comments": 9},
                "created_at": "2020-05-01T12:00:00Z", "web_url": "https://www.tiktok.com/@someone/video/6829540328",
                "cover_url": "", "creator_id": 7, "language": "en"}}]})]),
                   400: ERRORS[400], 404: ERRORS[404], 409: ERRORS[409]},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def similar(self, request, pk=None):
        video_id, limit = _row_id(pk), _limit(request)
        items = [{"similarity": similarity, "video": catalog_video_data(video)}
                 for similarity, video in selectors.similar_videos(video_id, limit)]
        # SimilarVideosSerializer's JSON, built without it (catalog.serializers.catalog_video_data).
        return Response({"video_id": video_id, "items": items})


@extend_schema_view(
    list=extend_schema(summary="List creators", description="Newest added first, in pages. " + CACHE_NOTE,
                       responses={200: CatalogCreatorSerializer(many=True), 400: ERRORS[400]}),
    retrieve=extend_schema(summary="One creator, with their counts", description=CACHE_NOTE,
                           responses={200: CatalogCreatorSerializer, 404: ERRORS[404]}),
)
class CreatorViewSet(CacheableReadsMixin, viewsets.ReadOnlyModelViewSet):
    api_scope = "read"
    serializer_class = CatalogCreatorSerializer
    pagination_class = CatalogCursorPagination
    queryset = Creator.objects.only("id")
    shown_rows, shown_data = staticmethod(selectors.shown_creators), staticmethod(catalog_creator_data)

    @extend_schema(
        summary="Similar creators",
        description="The creators nearest to this one by their pooled vectors (bio and recent videos; "
                    "itself excluded), each with its cosine similarity, most similar first. " + CACHE_NOTE,
        parameters=[LIMIT],
        responses={200: OpenApiResponse(SimilarCreatorsSerializer, examples=[OpenApiExample("similar", value={
            "creator_id": 7, "items": [{"similarity": 0.77, "creator": {
                "id": 9, "external_id": "6754", "handle": "another", "display_name": "Another", "bio": "",
                "verified": False, "follower_count": 120000, "following_count": 80, "heart_count": 2400000,
                "video_count": 310, "language": "en", "country": "", "catalog_video_count": 3}}]})]),
                   400: ERRORS[400], 404: ERRORS[404], 409: ERRORS[409]},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def similar(self, request, pk=None):
        creator_id, limit = _row_id(pk), _limit(request)
        items = [{"similarity": similarity, "creator": catalog_creator_data(creator)}
                 for similarity, creator in selectors.similar_creators(creator_id, limit)]
        # SimilarCreatorsSerializer's JSON, built without it (catalog.serializers.catalog_creator_data).
        return Response({"creator_id": creator_id, "items": items})


class IngestJSONParser(StrictJSONParser):
    """A batch of up to ``INGEST_MAX_RECORDS`` records needs more than the API's 64 KiB."""

    max_bytes_setting = "INGEST_MAX_BODY_BYTES"


INGEST_JOB_EXAMPLE = {
    "job": "https://feed.example.com/api/v1/ingest/jobs/0b5e5c1e-4a47-4d7e-9b1c-2f1f0e6a9d31/",
    "id": "0b5e5c1e-4a47-4d7e-9b1c-2f1f0e6a9d31", "status": "queued",
    "counts": {"received": 2, "valid": 1, "failed": 1, "created": 0, "updated": 0, "videos_embedded": 0,
               "creators_embedded": 0},
    "progress": {"store": {"done": 0, "total": 1}, "embed_videos": {"done": 0, "total": None},
                 "embed_creators": {"done": 0, "total": None}},
    "failures": [{"index": 1, "field": "authorMeta.id", "message": "missing authorMeta.'id'"}],
    "error": "", "created_at": "2026-01-05T10:00:00Z", "updated_at": "2026-01-05T10:00:00Z",
    "started_at": None, "finished_at": None,
}


class IngestVideosView(APIView):
    api_scope = "ingest"
    parser_classes = [IngestJSONParser]

    @extend_schema(
        summary="Send a batch of videos",
        description="Videos in the TikTok Trending export's shape, with their creators in `authorMeta`, as "
                    '`{"videos": [...]}` (or `{"collector": [...]}`), at most 1000 (`INGEST_MAX_RECORDS`) and '
                    "8 MiB. Each record is checked now: those that fail are listed in `failures` by index and "
                    "field, the others are stored (created, or updated by id) and embedded by a job. The answer "
                    "is 202 with the job's state and its URL (also in `Location`): poll it until `status` is "
                    "`done`. Sending the same batch again answers the same job (queued again if it had failed), "
                    "and records already stored and embedded are neither created nor embedded again.",
        request=IngestBatchSerializer,
        responses={
            202: IngestJobSerializer,
            400: OpenApiResponse(ErrorSerializer, description="The body is not a batch (named in `field`).",
                                 examples=[OpenApiExample("empty batch", value={
                                     "error": "videos: This list may not be empty.", "field": "videos",
                                     "code": "empty", "details": {"videos": ["This list may not be empty."]}})]),
            413: OpenApiResponse(ErrorSerializer, description="The body is over 8 MiB (`INGEST_MAX_BODY_BYTES`)."),
        },
        examples=[
            OpenApiExample("batch", request_only=True, value={"videos": [
                {"id": "6907228749016714497", "text": "Confidence went up #fyp", "createTime": 1608214517,
                 "authorMeta": {"id": "6825540583826768902", "name": "ninakleij", "nickName": "Nina"},
                 "musicMeta": {"musicId": "6790057285814061057", "musicName": "Element", "musicAuthor": "Pop Smoke"},
                 "hashtags": [{"name": "fyp"}], "videoMeta": {"duration": 15},
                 "diggCount": 3710, "shareCount": 50, "playCount": 44800, "commentCount": 68},
                {"id": "6907228749016714498", "text": "no author id", "authorMeta": {"name": "someone"}},
            ]}),
            OpenApiExample("accepted", response_only=True, status_codes=["202"], value=INGEST_JOB_EXAMPLE),
        ],
    )
    def post(self, request):
        body = IngestBatchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job, _ = ingestion.submit_batch(partner_of(request), body.validated_data["records"])
        # Read again: where tasks run eagerly (no broker), the job has run by now.
        job = selectors.ingest_job(str(job.pk), partner=partner_of(request))
        data = IngestJobSerializer(job, context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["job"]})


class IngestJobView(APIView):
    api_scope = "ingest"

    @extend_schema(
        summary="An ingestion job's state",
        description="Status (`queued`, `running`, `done`, `failed`), each phase's progress, the counts and the "
                    "failed records. Only the partner that sent the batch sees its job.",
        responses={200: OpenApiResponse(IngestJobSerializer, examples=[OpenApiExample("done", value={
                       **INGEST_JOB_EXAMPLE, "status": "done",
                       "counts": {**INGEST_JOB_EXAMPLE["counts"], "created": 1, "videos_embedded": 1,
                                  "creators_embedded": 1},
                       "progress": {"store": {"done": 1, "total": 1}, "embed_videos": {"done": 1, "total": 1},
                                    "embed_creators": {"done": 1, "total": 1}},
                       "started_at": "2026-01-05T10:00:01Z", "finished_at": "2026-01-05T10:00:02Z"})]),
                   404: OpenApiResponse(ErrorSerializer, description="No such job of yours.")},
    )
    def get(self, request, job_id):
        job = selectors.ingest_job(job_id, partner=partner_of(request))
        response = Response(IngestJobSerializer(job, context={"request": request}).data)
        patch_cache_control(response, no_store=True)  # it changes while the job runs
        return response
