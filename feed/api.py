"""The session API: the contract the feed, partners and tests share (``/api/v1/sessions/``).

A session belongs to the partner whose key started it: another partner's key, or the id of a
viewer's feed session, finds nothing (404).
"""
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from . import services
from .api_auth import partner_of
from .serializers import (
    BatchSerializer,
    SessionCreateSerializer,
    SessionSerializer,
    SignalInputSerializer,
    SignalOutcomeSerializer,
)


class SessionCreateView(APIView):
    api_scope = "sessions"

    @extend_schema(request=SessionCreateSerializer, responses={201: SessionSerializer})
    def post(self, request):
        body = SessionCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        session = services.start_session(**body.validated_data, partner=partner_of(request))
        return Response(SessionSerializer(session).data, status=status.HTTP_201_CREATED)


class SessionBatchView(APIView):
    api_scope = "sessions"

    @extend_schema(request=None, responses={200: BatchSerializer})
    def post(self, request, session_id):
        batch = services.next_batch(session_id, partner=partner_of(request))
        return Response(BatchSerializer(batch).data)


class SessionSignalsView(APIView):
    api_scope = "sessions"

    @extend_schema(request=SignalInputSerializer, responses={200: SignalOutcomeSerializer})
    def post(self, request, session_id):
        body = SignalInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if "watched_ms" in data:
            outcome = services.record_view(session_id, video_id=data["video"], event_id=data["event_id"],
                                           watched_ms=data["watched_ms"], duration_ms=data.get("duration_ms"),
                                           partner=partner_of(request))
        else:
            outcome = services.record_action(session_id, video_id=data["video"], event_id=data["event_id"],
                                             signal_type=data["type"], partner=partner_of(request))
        return Response(SignalOutcomeSerializer(outcome).data)
