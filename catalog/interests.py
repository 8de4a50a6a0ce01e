"""Interest vectors of viewers from what they wrote: the mean of the embeddings of their last
``INTEREST_RECENT`` comments (``catalog.documents.pool_interest``), with the count that says
whether it is thin. Reads only (and encodes): a selector."""
from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings

from .documents import INTEREST_RECENT, Interest, pool_interest
from .models import Comment


def texts_interest(texts: Sequence[str]) -> Interest:
    """The interest of described texts (blank ones skipped), newest first."""
    from .embedding import encode

    texts = [t.strip() for t in texts if t.strip()][:INTEREST_RECENT]
    return pool_interest(list(encode(texts, model_name=settings.EMBEDDING_MODEL)) if texts else [])


def commenter_interest(handle: str) -> Interest:
    """The interest of the viewer who commented as ``handle`` (``count`` 0 when they never did)."""
    texts = list(Comment.objects.filter(author_handle=handle).order_by("-created_at", "-id")
                 .values_list("text", flat=True)[:INTEREST_RECENT])
    return texts_interest(texts)
