"""The recommendations API: ``POST /api/v1/recommendations/``, the partner funnel over the
catalog (``algorithms.recommendations``)."""
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from feed.api_auth import partner_of
from tokfeed.api_errors import ErrorSerializer

from .recommendations import recommend
from .serializers import RecommendationRequestSerializer, RecommendationSerializer


class RecommendationsView(APIView):
    api_scope = "read"

    @extend_schema(
        summary="Recommend videos",
        description="Exactly one of interest_texts, commenter (the interest of their last 100 comments), "
                    "video_ids (with optional negative_video_ids) or session; "
                    "optional filters and rules. The answer lists the page and the funnel's stages (recall, "
                    "filter, recall_exact when the filters left too few, rerank, cross_encode when a cross-encoder "
                    "is configured, rules, top), each with what it received, kept and its time; the interest the "
                    "query pooled: how many texts, comments or liked videos (count), and whether that is under 20 "
                    "(thin: lean on other evidence). `reranker` says which reranker ordered the page: `learned` (a "
                    "model trained from the feed's log; `parts` are its features) or `hand_weighted` (before there "
                    "is one).",
        request=RecommendationRequestSerializer,
        responses={
            200: RecommendationSerializer,
            400: OpenApiResponse(ErrorSerializer, description="bad input, or a video that does not exist"),
            404: OpenApiResponse(ErrorSerializer, description="no such session of yours"),
        },
        examples=[
            OpenApiExample("interests", request_only=True, value={
                "interest_texts": ["street food in Bangkok", "home workouts"],
                "filters": {"min_followers": 10000, "blocked_hashtags": ["ad"]},
                "rules": {"creator_quota": 2, "sponsored": [{"video": 42, "position": 3}]},
                "limit": 10,
            }),
            OpenApiExample("liked videos", request_only=True,
                           value={"video_ids": [12, 57], "negative_video_ids": [8], "limit": 5}),
            OpenApiExample("page", response_only=True, status_codes=["200"], value={
                "items": [{"video": 311, "rank": 1, "source": "ann", "similarity": 0.71, "score": 0.83,
                           "parts": {"similarity": 0.71, "creator_affinity": 0.4, "popularity": 0.6,
                                     "freshness": 0.0, "negative": 0.0}}],
                "stages": [{"name": "recall", "received": 0, "kept": 200, "ms": 3.1},
                           {"name": "rerank", "received": 200, "kept": 200, "ms": 1.2},
                           {"name": "rules", "received": 200, "kept": 200, "ms": 0.1},
                           {"name": "top", "received": 200, "kept": 1, "ms": 0.0}],
                "reranker": "hand_weighted", "reranker_model": None,
                "interest": {"count": 2, "thin": True},
            }),
            OpenApiExample("a commenter's interest", request_only=True, value={"commenter": "viewer_vic", "limit": 5}),
        ],
    )
    def post(self, request):
        body = RecommendationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        page = recommend(
            partner=partner_of(request), interest_texts=data.get("interest_texts"), commenter=data.get("commenter"),
            video_ids=data.get("video_ids"),
            negative_video_ids=data.get("negative_video_ids", ()), session=data.get("session"),
            **{k: data[k] for k in ("filters", "rules") if k in data}, limit=data["limit"],
        )
        return Response(RecommendationSerializer(page).data)
