"""Offline evaluation of recommenders on a neutral user-item format, Django-free.

Any dataset converts to two JSON-lines files:

- items: ``{"id": ..., "text": "..."}`` one per item (ids are strings or integers, compared as
  strings; an empty text means the item has no usable text);
- events: ``{"user": ..., "item": ..., "label": 1 | 0, "split": "history" | "test"}``, a user's
  history events in the order they happened (file order is time order).

A user's interest comes from the history split alone: the label-1 history items are its
engagements. Test rows are what is scored: per tested user, the candidates to rank and which of
them the user engaged with. Popularity, item co-occurrence and the hybrid's training all read the
history split only; nothing but the metrics ever reads a test label.

- ``data``: reading and checking the two files (``load_dataset``), with errors naming the line;
- ``scoring``: the history matrix, negative sampling, queries and the features (popularity,
  content cosine, co-occurrence, a few cheap ones) computed for them;
- ``metrics``: per-user ROC AUC, NDCG@k, recall@k and the mean ROC curve;
- ``run``: the hybrid's training on the history split and the side-by-side ``Report``;
- ``movielens``: the MovieLens converter.
"""
