"""A session started with interest texts or a bucket visibly starts from it, whatever the
algorithm's first state (the default's is ``personalized`` with evidence ranking, which used to
ignore the bucket: only ``biased`` states read it)."""
import uuid

import numpy as np
from django.conf import settings

from catalog.embedding import encode
from catalog.models import Video
from feed import services

TEXT = "cute puppy dog playing"


def nearest_ids(vector, k):
    rows = list(Video.objects.filter(embedding__isnull=False).values_list("id", "embedding"))
    ids = np.array([pk for pk, _ in rows])
    similarity = np.array([v for _, v in rows], dtype=np.float32) @ vector
    return set(ids[np.argsort(-similarity)[:k]].tolist())


def test_a_text_bucket_steers_the_default_algorithms_first_batch(catalog_db):
    near = nearest_ids(encode([TEXT], model_name=settings.EMBEDDING_MODEL)[0], 40)
    session_id = uuid.UUID(int=7)

    biased = services.next_batch(services.start_session(bucket={"text": TEXT}, session_id=session_id).id)
    # Another session without the bucket.
    plain_id = uuid.UUID(int=8)
    plain = services.next_batch(services.start_session(session_id=plain_id).id)

    biased_near = sum(item.video.id in near for item in biased.items)
    plain_near = sum(item.video.id in near for item in plain.items)
    # Most of the batch (all but its exploration slots) is among the 40 nearest of 1000 videos.
    assert biased_near >= len(biased.items) // 2, (biased_near, len(biased.items))
    assert plain_near < biased_near
