"""Why a card was served, in the viewer's words ("Because you watched @maria's video about #cats").

Built from what the ranking recorded with the impression (its source, batch type and score parts)
and, for a pick near the viewer's history, the nearest video they reacted to
(``explanation_queries.nearest_reacted``). The operator's terms (states, reason codes,
similarities) stay in the debug overlay (``?debug=1``). Plain functions, no database.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

#: A random or topic pick with at least this many plays is "popular" (the catalog is trending videos).
POPULAR_PLAYS = 1_000_000
#: "about ..." quotes at most this many words of a caption.
ABOUT_WORDS = 6

# Ranking sources (``algorithms.ranking.candidates``), as plain strings: this module stays Django-free.
_NEAR_HISTORY = {"ann", "tags"}
_EXPLORING = {"explore"}

_VERBS = {"LIKE": "liked", "SHARE": "shared"}


@dataclass(frozen=True)
class ReactedVideo:
    """The viewer's reaction nearest to a card: its signal type and the video reacted to."""

    signal: str
    handle: str
    caption: str
    hashtag: str | None = None


def about(caption: str, hashtag: str | None) -> str:
    """What a video is about, briefly: its first hashtag, else the first words of its caption."""
    if hashtag:
        return f"#{hashtag}"
    words = [w for w in re.sub(r"[#@]\S+", " ", caption).split() if w.strip()]
    if not words:
        return ""
    text = " ".join(words[:ABOUT_WORDS])
    return f"“{text}…”" if len(words) > ABOUT_WORDS else f"“{text}”"


def in_words(source: str, batch_type: str, parts: dict | None, play_count: int,
             nearest: ReactedVideo | None) -> str:
    """The card's reason as a viewer reads it."""
    parts = parts or {}
    if source == "sponsored":
        return "Sponsored"
    if source == "bias":
        return "Picked for the interests you chose"
    if source in _NEAR_HISTORY:
        if nearest is None:
            return "Picked for what you've been watching"
        if nearest.signal == "FOLLOW_CREATOR":
            return f"Because you follow @{nearest.handle}"
        topic = about(nearest.caption, nearest.hashtag)
        verb = _VERBS.get(nearest.signal, "watched")
        return f"Because you {verb} @{nearest.handle}'s video" + (f" about {topic}" if topic else "")
    if source in _EXPLORING or parts.get("explore", 0) > parts.get("liked", 0):
        return "Exploring something new"
    if play_count >= POPULAR_PLAYS:
        return "Popular right now"
    return "Exploring something new"
