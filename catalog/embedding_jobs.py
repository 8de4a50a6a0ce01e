"""The embedding job's units of work: find what is stale, embed a batch of ids, store vectors.

A video is stale when it has no vector or when its document hash or the configured model differ
from those recorded with its vector. A creator's vector pools its bio and its last 30 videos'
vectors (each caption is represented by the vector of the video it belongs to, so a creator
costs one encode, its bio), weighted by post time when ``CREATOR_VECTOR_HALF_LIFE_DAYS`` is set
(``documents.recency_weights``); it is stale when that bio, any of those videos' documents or
the half-life changed.
Every function here is idempotent: running it twice stores the same thing.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Prefetch
from django.db.models.functions import Length
from django.utils import timezone

from .documents import (
    CREATOR_RECENT_VIDEOS, creator_document_hash, document_hash, mean_pool, recency_weights, video_document,
)
from .embedding import encode
from .models import Comment, Creator, Hashtag, Music, Topic, Video


def refresh_video_documents(chunk_size: int = 1000, ids: Iterable[int] | None = None) -> int:
    """Recompute every video's document (or those of videos ``ids``) from its current caption,
    music and hashtags.

    Returns how many documents changed. Cheap next to encoding, and it makes an edit made
    anywhere (admin, API, import) visible to the job without signals on every model.
    """
    changed = []
    videos = Video.objects.all() if ids is None else Video.objects.filter(id__in=list(ids))
    videos = (
        videos.select_related("music")
        .prefetch_related(Prefetch("hashtags", queryset=Hashtag.objects.order_by("name")))
        .only("id", "caption", "document", "document_hash", "music__name", "music__author")
        .order_by("id")
    )
    for video in videos.iterator(chunk_size=chunk_size):
        text = video_document(
            video.caption,
            video.music.name if video.music else "",
            video.music.author if video.music else "",
            (tag.name for tag in video.hashtags.all()),
        )
        if text != video.document:
            video.document, video.document_hash = text, document_hash(text)
            changed.append(video)
    Video.objects.bulk_update(changed, ["document", "document_hash"], batch_size=chunk_size)
    return len(changed)


def stale_video_ids(model_name: str, *, force: bool = False, ids: Iterable[int] | None = None) -> list[int]:
    """Ids of videos to embed (among ``ids`` when given), shortest document first (batches of
    similar length pad less)."""
    videos = Video.objects.all() if ids is None else Video.objects.filter(id__in=list(ids))
    if not force:
        from django.db.models import Q

        videos = videos.filter(
            Q(embedding__isnull=True)
            | ~Q(embedding_model=model_name)
            | ~Q(embedding_document_hash=F("document_hash"))
        )
    return list(videos.order_by(Length("document"), "id").values_list("id", flat=True))


def embed_videos(ids: list[int], *, model_name: str, device: str = "auto", batch_size: int = 64) -> int:
    """Embed the documents of videos ``ids`` and store the vectors; returns how many were stored."""
    videos = list(Video.objects.filter(id__in=ids).only("id", "document", "document_hash"))
    if not videos:
        return 0
    vectors = encode([v.document for v in videos], model_name=model_name, device=device, batch_size=batch_size)
    _store_vectors(Video, [(v.id, vector, v.document_hash) for v, vector in zip(videos, vectors)], model_name)
    return len(videos)


def _recent_videos_by_creator(creator_ids=None) -> dict[int, list[tuple[int, str, float | None]]]:
    """``{creator id: [(video id, document hash of its vector, posted at in unix seconds)]}``,
    newest first, at most 30."""
    videos = Video.objects.filter(embedding__isnull=False)
    if creator_ids is not None:
        videos = videos.filter(creator_id__in=creator_ids)
    recent: dict[int, list[tuple[int, str, float | None]]] = defaultdict(list)
    rows = videos.order_by("creator_id", F("created_at").desc(nulls_last=True), "-id").values_list(
        "creator_id", "id", "embedding_document_hash", "created_at"
    )
    for creator_id, video_id, vector_hash, created_at in rows.iterator(chunk_size=5000):
        if len(recent[creator_id]) < CREATOR_RECENT_VIDEOS:
            recent[creator_id].append((video_id, vector_hash, None if created_at is None else created_at.timestamp()))
    return recent


def _creator_hash(bio: str, rows: list[tuple[int, str, float | None]]) -> str:
    return creator_document_hash(bio, [h for _, h, _ in rows], settings.CREATOR_VECTOR_HALF_LIFE_DAYS,
                                 [t for _, _, t in rows])


def stale_creator_ids(model_name: str, *, force: bool = False, ids: Iterable[int] | None = None) -> list[int]:
    """Ids of creators (among ``ids`` when given) whose bio, recent videos or model changed since
    their vector was made."""
    ids = None if ids is None else list(ids)
    recent = _recent_videos_by_creator(ids)
    stale = []
    creators = Creator.objects.all() if ids is None else Creator.objects.filter(id__in=ids)
    # Shortest bio first, for the same reason as videos: batches of similar length pad less.
    creators = creators.order_by(Length("bio"), "id").values_list(
        "id", "bio", "embedding_model", "embedding_document_hash"
    )
    for creator_id, bio, stored_model, stored_hash in creators:
        current = _creator_hash(bio, recent.get(creator_id, []))
        if force or stored_model != model_name or stored_hash != current:
            stale.append(creator_id)
    return stale


def embed_creators(ids: list[int], *, model_name: str, device: str = "auto", batch_size: int = 64) -> int:
    """Pool bio and recent video vectors into each creator's vector; returns how many were stored.

    A creator with neither a bio nor an embedded video gets no vector, but its hash is recorded
    so the job does not come back to it until something changes.
    """
    creators = list(Creator.objects.filter(id__in=ids).only("id", "bio"))
    recent = _recent_videos_by_creator([c.id for c in creators])
    video_vectors = dict(
        Video.objects.filter(id__in=[vid for rows in recent.values() for vid, _, _ in rows]).values_list("id", "embedding")
    )
    with_bio = [c for c in creators if c.bio.strip()]
    bio_vectors = dict(
        zip(
            (c.id for c in with_bio),
            encode([c.bio.strip() for c in with_bio], model_name=model_name, device=device, batch_size=batch_size),
        )
    )
    stored = []
    for creator in creators:
        rows = recent.get(creator.id, [])
        parts = [video_vectors[vid] for vid, _, _ in rows]
        weights = list(recency_weights([t for _, _, t in rows], settings.CREATOR_VECTOR_HALF_LIFE_DAYS))
        if creator.id in bio_vectors:
            parts.insert(0, bio_vectors[creator.id])
            weights.insert(0, 1.0)  # the bio speaks for the creator now: as the newest post
        pooled = mean_pool([np.asarray(p, dtype=np.float32) for p in parts], weights if parts else None)
        stored.append((creator.id, pooled, _creator_hash(creator.bio, rows)))
    _store_vectors(Creator, stored, model_name)
    return len(creators)


def _store_vectors(model, rows: list[tuple[int, np.ndarray | None, str]], model_name: str) -> None:
    """Write ``(pk, vector or None, document hash)`` rows in one UPDATE.

    ``bulk_update`` builds a CASE expression per column and row, which costs more than the
    encoding itself at these sizes; one UPDATE joined to unnested arrays does not.
    """
    if not rows:
        return
    ids = [pk for pk, _, _ in rows]
    vectors = [None if v is None else "[" + ",".join(map(str, v.tolist())) + "]" for _, v, _ in rows]
    hashes = [h for _, _, h in rows]
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} AS t
               SET embedding = d.embedding::vector, embedding_model = %s,
                   embedding_document_hash = d.hash, embedded_at = %s
              FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS d(id, embedding, hash)
             WHERE t.id = d.id
            """,
            [model_name, timezone.now(), ids, vectors, hashes],
        )


def topic_count_for(n_videos: int) -> int:
    """How many topic clusters a catalog of ``n_videos`` gets: about sqrt(n/10), in [2, 64]."""
    return max(2, min(64, round((n_videos / 10) ** 0.5)))


def cluster_topics(model_name: str, *, seed: int = 0) -> int:
    """Cluster the video vectors with k-means, store the topics, label each video.

    Returns the number of topics. Videos without a vector get no topic.
    """
    from algorithms.vectors import kmeans

    rows = list(Video.objects.filter(embedding__isnull=False).order_by("id").values_list("id", "embedding"))
    if len(rows) < 2:
        return 0
    ids = [pk for pk, _ in rows]
    centroids, labels = kmeans(np.array([v for _, v in rows], dtype=np.float32), topic_count_for(len(rows)), seed=seed)
    sizes = np.bincount(labels, minlength=len(centroids))
    with transaction.atomic():
        Topic.objects.all().delete()
        Topic.objects.bulk_create(
            Topic(number=i, centroid=centroid, size=int(sizes[i]), embedding_model=model_name)
            for i, centroid in enumerate(centroids)
        )
        Video.objects.filter(topic__isnull=False).update(topic=None)
        _label_videos(ids, labels)
    return len(centroids)


def assign_nearest_topics(video_ids: Iterable[int], model_name: str) -> int:
    """Give videos ``video_ids`` (new ones, just embedded) the topic whose centroid is nearest,
    without re-clustering the catalog: topic-drawn batches would otherwise never show them until
    the next ``cluster_topics``. Nothing happens when the topics were made with another model (or
    not at all). Returns how many videos got a topic."""
    topics = list(Topic.objects.filter(embedding_model=model_name).order_by("number").values_list("number", "centroid"))
    rows = list(Video.objects.filter(id__in=list(video_ids), embedding__isnull=False, embedding_model=model_name)
                .order_by("id").values_list("id", "embedding"))
    if not topics or not rows:
        return 0
    numbers = np.array([number for number, _ in topics])
    centroids = np.array([c for _, c in topics], dtype=np.float32)
    nearest = numbers[np.argmax(np.array([v for _, v in rows], dtype=np.float32) @ centroids.T, axis=1)]
    touched = sorted(set(nearest.tolist()))
    with transaction.atomic():
        _label_videos([pk for pk, _ in rows], nearest)
        topics = list(Topic.objects.filter(number__in=touched).select_for_update())
        sizes = dict(Video.objects.filter(topic__in=touched).values_list("topic").annotate(n=Count("id")))
        for topic in topics:
            topic.size = sizes.get(topic.number, 0)
        Topic.objects.bulk_update(topics, ["size"])
    return len(rows)


def _label_videos(ids: list[int], topics) -> None:
    # One UPDATE joined to unnested arrays, as _store_vectors does (bulk_update's CASE per row
    # costs more than the clustering).
    table = connection.ops.quote_name(Video._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS t SET topic = d.topic FROM unnest(%s::bigint[], %s::int[]) AS d(id, topic) WHERE t.id = d.id",
            [list(ids), [int(topic) for topic in topics]],
        )


def analyze_catalog() -> None:
    """Refresh the planner's statistics of every catalog table an import fills, after a bulk change.

    Without them the planner may still believe, say, that no video has a vector (statistics taken
    right after an import) and prefer a sequential scan to the HNSW index, or scan the whole
    hashtag table once per video shown instead of reading its rows by key, until autovacuum
    comes round (on the embedded server, often not before the process that imported is gone).
    """
    with connection.cursor() as cursor:
        for model in (Creator, Music, Hashtag, Video, Video.hashtags.through, Comment):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
