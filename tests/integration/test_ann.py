import numpy as np
from django.db import connection
from pgvector.django import CosineDistance

from catalog.models import Video
from catalog.selectors import nearest_videos


def _all_vectors():
    ids, vectors = zip(*Video.objects.values_list("id", "embedding"))
    return np.array(ids), np.array(vectors)


def test_nearest_videos_query_uses_the_hnsw_index(catalog_db):
    query = Video.objects.first().embedding
    qs = Video.objects.filter(embedding__isnull=False).annotate(d=CosineDistance("embedding", query)).order_by("d")[:10]
    plan = qs.explain()
    assert "video_embedding_hnsw" in plan, plan


def test_ann_agrees_with_exact_search_on_the_top_10(catalog_db):
    ids, vectors = _all_vectors()
    rng = np.random.default_rng(7)
    queries = [vectors[i] for i in rng.choice(len(ids), 15, replace=False)]
    # Queries between videos, not just on them.
    queries += [(vectors[i] + vectors[j]) / np.linalg.norm(vectors[i] + vectors[j]) for i, j in rng.choice(len(ids), (15, 2))]
    row_of = {video_id: row for row, video_id in enumerate(ids)}
    for query in queries:
        sims = vectors @ query
        exact = np.sort(sims)[::-1][:10]
        found = [video.id for video, _ in nearest_videos(query, 10)]
        # Same similarities in the same order; videos with identical documents tie, and any of
        # the tied ids is a right answer.
        np.testing.assert_allclose(sims[[row_of[i] for i in found]], exact, atol=1e-5)


def test_nearest_videos_reports_cosine_similarity(catalog_db):
    video = Video.objects.first()
    (top, similarity), *_ = nearest_videos(video.embedding, 3)
    assert top.id == video.id
    assert abs(similarity - 1.0) < 1e-5
