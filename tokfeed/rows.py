"""Model instances from written-out SQL.

The feed's hot paths (every view, every batch) write their SQL out: on a small machine an ORM
query costs about 1 ms of Python to build, several times the statement itself (bench/batch.py).
These helpers keep such statements in step with the models: the columns come from the model's
fields, and the rows become ordinary model instances (``Model.from_db``), so the code that reads
them cannot tell them from the ORM's. Fields left out are deferred: reading one loads it.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection


def field_names(model, *, only: Iterable[str] | None = None, defer: Iterable[str] = ()) -> tuple[str, ...]:
    """The column names (``attname``) of ``model``'s concrete fields, in the order
    ``Model.from_db`` takes them: all of them, or those named in ``only``, minus ``defer``.
    Names may be field names or attnames (``creator`` or ``creator_id``)."""
    only, defer = (None if only is None else set(only)), set(defer)

    def named(field, names):
        return field.name in names or field.attname in names

    return tuple(
        f.attname for f in model._meta.concrete_fields
        if (only is None or named(f, only)) and not named(f, defer)
    )


def select_list(alias: str, names: Sequence[str]) -> str:
    """``alias.a, alias.b, ...``: the columns of ``field_names`` for a SELECT."""
    return ", ".join(f"{alias}.{name}" for name in names)


def from_row(model, names: Sequence[str], values: Sequence):
    """A ``model`` instance loaded with ``values`` for the columns ``names`` (see ``field_names``)."""
    return model.from_db(connection.alias, list(names), values)
