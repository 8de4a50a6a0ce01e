"""``tokfeed.rows``: lists passed as array literals and rows read in binary give PostgreSQL's own
values, the same as Django's cursor gives them."""
import numpy as np
import pytest
from django.db import connection

from catalog.models import Video
from catalog.selectors import vector_from_bytes
from tokfeed.rows import array_literal, prepared_rows


@pytest.mark.parametrize("numbers, cast", [
    ([3, 1, 2, 2**62], "bigint[]"),
    ([np.int64(7), np.int32(-4)], "bigint[]"),
    ([0.1, 1e-05, 0.9999999999999999, 0.0], "float8[]"),
    ([np.float64(0.25), np.float32(0.5)], "float8[]"),
    ([], "bigint[]"),
])
def test_an_array_literal_reads_back_as_the_same_numbers(db, numbers, cast):
    [(read,)] = prepared_rows(f"SELECT %s::{cast}", [array_literal(numbers)])
    assert read == [n.item() if isinstance(n, np.generic) else n for n in numbers]


def test_rows_read_in_binary_are_the_rows_read_as_text(catalog_db):
    ids = list(Video.objects.exclude(embedding=None).order_by("id").values_list("id", flat=True)[:4])
    statement = """SELECT v.id, vector_send(v.embedding), v.caption, v.created_at, v.duration_s,
                          ARRAY(SELECT ARRAY[vh.hashtag_id, vh.video_id] FROM catalog_video_hashtags vh
                                 WHERE vh.video_id = v.id ORDER BY vh.hashtag_id),
                          (SELECT json_agg(json_build_array(vh.hashtag_id, v.caption)) FROM catalog_video_hashtags vh
                            WHERE vh.video_id = v.id)
                     FROM catalog_video v WHERE v.id = ANY(%s::bigint[]) ORDER BY v.id"""
    binary = prepared_rows(statement, [array_literal(ids)], binary=True)
    with connection.cursor() as cursor:
        cursor.execute(statement, [ids])
        text = cursor.fetchall()
    assert [row[0] for row in binary] == ids
    assert binary == text
    stored = {video.pk: video.embedding for video in Video.objects.filter(pk__in=ids)}
    for row in binary:
        np.testing.assert_array_equal(vector_from_bytes(row[1]), np.asarray(stored[row[0]], dtype=np.float32))
