"""For each card, the viewer's reaction nearest to it, to explain the card in words
(``feed.explanations``).

Written out because it is one statement per batch served (a ``LATERAL`` nearest-neighbour over
the session's last ``RECENT_REACTIONS`` positive signals for each card), where the ORM would
need one query per card; it reads only that session's latest signals (index
``signal_session_latest``).
"""
from __future__ import annotations

from django.db import connection

from catalog.models import Creator, Video

from .explanations import ReactedVideo
from .models import Signal

#: How far back a reaction may explain a card (the rankers read about as many).
RECENT_REACTIONS = 50


def nearest_reacted(session_id, video_ids: list[int], signal_types: list[str]) -> dict[int, ReactedVideo]:
    """``{card video: the nearest video the session reacted to with one of signal_types}``
    (cosine, among its last RECENT_REACTIONS such signals not undone); cards with no such
    reaction, or no vector, are left out."""
    if not video_ids or not signal_types:
        return {}
    signal, video, creator = Signal._meta.db_table, Video._meta.db_table, Creator._meta.db_table
    tags = Video.hashtags.through
    tag_table, hashtag = tags._meta.db_table, tags._meta.get_field("hashtag").remote_field.model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH reacted AS (
                    SELECT s.type, s.video_id FROM {signal} s
                     WHERE s.session_id = %s AND s.type = ANY(%s)
                       AND NOT EXISTS (SELECT 1 FROM {signal} u WHERE u.undoes_id = s.id)
                     ORDER BY s.id DESC LIMIT %s
                )
                SELECT card.id, near.type, near.handle, near.caption, near.tag
                  FROM {video} card
                 CROSS JOIN LATERAL (
                        SELECT r.type, c.handle, v.caption,
                               (SELECT h.name FROM {tag_table} vh JOIN {hashtag} h ON h.id = vh.hashtag_id
                                 WHERE vh.video_id = v.id ORDER BY vh.id LIMIT 1) AS tag
                          FROM reacted r JOIN {video} v ON v.id = r.video_id JOIN {creator} c ON c.id = v.creator_id
                         WHERE v.id <> card.id AND v.embedding IS NOT NULL
                         ORDER BY v.embedding <=> card.embedding LIMIT 1) near
                 WHERE card.id = ANY(%s) AND card.embedding IS NOT NULL""",
            [session_id, list(signal_types), RECENT_REACTIONS, list(video_ids)],
        )
        return {row[0]: ReactedVideo(*row[1:]) for row in cursor.fetchall()}
