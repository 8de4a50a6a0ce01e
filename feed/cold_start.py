"""Cold start: where a new session starts before the viewer has done anything.

A new viewer may tell us a little: their country, the app's version, a few onboarding interests
(the session's bucket ``{"profile": {"country", "app_version", "interests"}}``). That profile
falls into buckets (``bucket_keys``: from the most specific, all three, to one attribute), and
``refresh_bucket_centroids`` (the Celery task ``feed.refresh_bucket_centroids``, on the beat
schedule) keeps, per bucket, the centroid of its top engagers' vectors: the sessions started
with a profile in that bucket that engaged most (positive signals), each one's vector the mean of
the videos it engaged with. ``"*"`` is the global centroid: the mean of all engaged content.

A session with a profile starts from the centroid of its most specific bucket that has one; else
from its onboarding interests' embedding; else from the global centroid, as a session without a
bucket does (``profile_vector``, ``global_centroid``). The vector becomes the session's
``bias_vector``: its first evidence in every state (``feed.services._pick``).

The key and pooling functions are pure; the rest reads and writes ``BucketCentroid`` rows.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from algorithms import machine
from catalog.documents import mean_pool
from catalog.models import Video
from catalog.selectors import vector_from_bytes
from tokfeed.ttl_cache import TTLCache

from .models import BucketCentroid, FeedSession, Signal

GLOBAL_KEY = "*"
#: The engagers per bucket whose vectors make its centroid (the most engaged first).
TOP_ENGAGERS = 50
#: A bucket needs this many engaged sessions for a centroid of its own.
MIN_ENGAGERS = 2
#: A session's vector pools its last this many engaged videos.
ENGAGER_LAST_N = 100
#: Signals that say the viewer engaged (a long or medium watch, or an explicit action).
ENGAGED = (machine.HIGH_ATTN, machine.MID_ATTN, machine.LIKE, machine.SHARE, machine.FOLLOW_CREATOR)
MAX_INTERESTS = 10
MAX_INTEREST_CHARS = 200

_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_VERSION = re.compile(r"^\d+(\.\d+)*$")


class ProfileError(ValueError):
    """A profile that cannot be bucketed; ``field`` says which attribute."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Profile:
    country: str = ""  # ISO 3166-1 alpha-2, upper case
    app_major: str = ""  # the app version's major number: "3" of "3.2.1"
    interests: tuple[str, ...] = ()  # lower case, sorted, de-duplicated


def parse_profile(data: object) -> Profile:
    """A ``Profile`` of the bucket's ``profile`` object, or ``ProfileError`` naming the field."""
    if not isinstance(data, dict) or not data:
        raise ProfileError("the profile should be an object with country, app_version and/or interests", "profile")
    unknown = set(data) - {"country", "app_version", "interests"}
    if unknown:
        raise ProfileError(f"unknown profile field {sorted(unknown)[0]!r}", f"profile.{sorted(unknown)[0]}")
    country = data.get("country", "")
    if not isinstance(country, str) or (country and not _COUNTRY.match(country)):
        raise ProfileError("country should be a two-letter ISO code", "profile.country")
    version = data.get("app_version", "")
    if not isinstance(version, str) or (version and not _VERSION.match(version)) or len(version) > 32:
        raise ProfileError("app_version should be dotted numbers such as 3.2.1", "profile.app_version")
    interests = data.get("interests", [])
    if (not isinstance(interests, list) or len(interests) > MAX_INTERESTS
            or not all(isinstance(i, str) and i.strip() and len(i) <= MAX_INTEREST_CHARS for i in interests)):
        raise ProfileError(f"interests should be at most {MAX_INTERESTS} non-empty texts of at most "
                           f"{MAX_INTEREST_CHARS} characters", "profile.interests")
    return Profile(country.upper(), version.split(".")[0] if version else "",
                   tuple(sorted({" ".join(i.lower().split()) for i in interests})))


def bucket_keys(profile: Profile) -> list[str]:
    """The buckets a profile falls into, the most specific first: every combination of its
    attributes, the ones with more attributes first (country before app version before
    interests among equals). Empty for an empty profile."""
    parts = [part for part in (f"country={profile.country}" if profile.country else "",
                               f"app={profile.app_major}" if profile.app_major else "",
                               f"interests={','.join(profile.interests)}" if profile.interests else "") if part]
    keys = []
    for size in range(len(parts), 0, -1):
        keys += ["|".join(c) for c in combinations(parts, size)]
    return keys


def top_engagers_centroid(engagers: Sequence[tuple[int, np.ndarray]], top: int = TOP_ENGAGERS) -> np.ndarray | None:
    """The mean of the vectors of the ``top`` engagers with the most engagement, ``(engaged
    signals, vector)`` each (ties keep their order)."""
    ranked = sorted(engagers, key=lambda engager: -engager[0])[:top]
    return mean_pool([vector for _, vector in ranked])


# --- the job --------------------------------------------------------------------------------------

def _engagers() -> list[tuple[dict, int, np.ndarray]]:
    """``(bucket, engaged signals, vector)`` of each session that engaged: its vector is the mean
    of its last ``ENGAGER_LAST_N`` engaged videos (pgvector's ``avg``), in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH engaged AS (
                    SELECT s.session_id, v.embedding,
                           row_number() OVER (PARTITION BY s.session_id ORDER BY s.id DESC) AS recency
                      FROM {Signal._meta.db_table} s JOIN {Video._meta.db_table} v ON v.id = s.video_id
                     WHERE s.type = ANY(%s) AND v.embedding IS NOT NULL)
                SELECT f.bucket, count(*), vector_send(avg(e.embedding))
                  FROM engaged e JOIN {FeedSession._meta.db_table} f ON f.id = e.session_id
                 WHERE e.recency <= %s
                 GROUP BY e.session_id, f.bucket""",
            [list(ENGAGED), ENGAGER_LAST_N],
        )
        # Django has psycopg hand jsonb over as text (its JSONField decodes it).
        return [(json.loads(bucket) if isinstance(bucket, str) else bucket or {}, count, vector_from_bytes(vector))
                for bucket, count, vector in cursor.fetchall()]


def _global_engaged_content() -> np.ndarray | None:
    """The mean of every engaged video's vector, one per engaged signal."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT vector_send(avg(v.embedding)) FROM {Signal._meta.db_table} s
                  JOIN {Video._meta.db_table} v ON v.id = s.video_id
                 WHERE s.type = ANY(%s) AND v.embedding IS NOT NULL""",
            [list(ENGAGED)],
        )
        (vector,) = cursor.fetchone()
    return None if vector is None else mean_pool([vector_from_bytes(vector)])


def refresh_bucket_centroids() -> dict[str, int]:
    """Recompute every bucket's centroid (and the global one) from the sessions' engagement;
    returns ``{key: engagers}`` of what was stored. Buckets left without enough engagers lose
    their row. Idempotent: the same signals store the same centroids."""
    by_key: dict[str, list[tuple[int, np.ndarray]]] = defaultdict(list)
    engagers_all = _engagers()
    for bucket, count, vector in engagers_all:
        if not isinstance(bucket, dict) or "profile" not in bucket:
            continue
        try:
            keys = bucket_keys(parse_profile(bucket["profile"]))
        except ProfileError:
            continue  # stored before validation tightened: not worth failing the job for
        for key in keys:
            by_key[key].append((count, vector))
    rows = {}
    for key, engagers in by_key.items():
        if len(engagers) >= MIN_ENGAGERS:
            centroid = top_engagers_centroid(engagers)
            if centroid is not None:
                rows[key] = (centroid, min(len(engagers), TOP_ENGAGERS))
    global_vector = _global_engaged_content()
    if global_vector is not None:
        rows[GLOBAL_KEY] = (global_vector, len(engagers_all))
    model, now = settings.EMBEDDING_MODEL, timezone.now()
    with transaction.atomic():
        BucketCentroid.objects.exclude(key__in=list(rows)).delete()
        BucketCentroid.objects.bulk_create(
            [BucketCentroid(key=key, centroid=vector, engagers=n, embedding_model=model, computed_at=now)
             for key, (vector, n) in rows.items()],
            update_conflicts=True, unique_fields=["key"], update_fields=["centroid", "engagers", "embedding_model",
                                                                         "computed_at"],
        )
    _global_centroids.forget()
    return {key: n for key, (_, n) in rows.items()}


# --- where a session starts -----------------------------------------------------------------------

def _stored(keys: Sequence[str]) -> np.ndarray | None:
    """The centroid of the first of ``keys`` that has one (of the configured model)."""
    found = dict(BucketCentroid.objects.filter(key__in=list(keys), embedding_model=settings.EMBEDDING_MODEL)
                 .values_list("key", "centroid"))
    for key in keys:
        if key in found:
            return np.asarray(found[key], dtype=np.float32)
    return None


#: The global centroid, by embedding model, remembered COLD_START_CACHE_SECONDS: every new session
#: without a bucket starts from it, and only the refresh job (on the beat, hourly by default) changes it.
_global_centroids: TTLCache[np.ndarray | None] = TTLCache(lambda: settings.COLD_START_CACHE_SECONDS)


def global_centroid() -> np.ndarray | None:
    """Where a session without a bucket starts: the global centroid of engaged content (None
    before the job has seen any engagement). Remembered a while (``_global_centroids``); each
    caller gets its own copy."""
    vector = _global_centroids.get(settings.EMBEDDING_MODEL, lambda: _stored([GLOBAL_KEY]))
    return None if vector is None else vector.copy()


def profile_vector(profile: Profile) -> np.ndarray | None:
    """Where a session with ``profile`` starts: its most specific bucket's centroid, else its
    onboarding interests' embedding, else the global centroid."""
    stored = _stored(bucket_keys(profile))
    if stored is not None:
        return stored
    if profile.interests:
        from catalog.interests import texts_interest

        return texts_interest(profile.interests).vector
    return global_centroid()
