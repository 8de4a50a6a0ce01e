"""Model instances from written-out SQL, and hot statements run prepared.

The feed's hot paths (every view, every batch) write their SQL out: on a small machine an ORM
query costs about 1 ms of Python to build, several times the statement itself (bench/batch.py).
These helpers keep such statements in step with the models: the columns come from the model's
fields, and the rows become ordinary model instances (``Model.from_db``), so the code that reads
them cannot tell them from the ORM's. Fields left out are deferred: reading one loads it.

``prepared_rows`` runs a hot read as a prepared statement (see its docstring); ``array_literal``
passes a long list of numbers to one.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import psycopg
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


def array_literal(numbers: Iterable[int | float]) -> str:
    """``'{1,2,3}'``: a list of numbers as PostgreSQL reads an array (cast it in the statement,
    ``%s::bigint[]``). psycopg dumps a list item by item in Python, about 2 us an item: a
    batch's seen ids and random draws cost half a millisecond a statement that way."""
    return "{" + ",".join(map(str, numbers)) + "}"


def prepared_rows(statement: str, params: Sequence, *, binary: bool = False) -> list[tuple]:
    """The rows of ``statement``, run as a prepared statement of the server connection.

    Django binds parameters client-side and so sends every statement as text that PostgreSQL
    parses and plans again; planning a join of a few tables can cost as much as running it on an
    index (the similar list: about 40% of its PostgreSQL CPU, bench/api.py). Here the statement
    goes through a server-binding cursor (still Django's wrapper: logging, error mapping,
    query capture): psycopg prepares it on the connection (``DATABASES`` ``prepare_threshold``,
    ``DATABASE_PREPARED_STATEMENTS``; without it, the same statement unprepared), and
    PostgreSQL keeps one generic plan once five runs found it no worse than a custom one.

    So only ``params`` that do not change the best plan (an id, not a ``LIMIT``: write those
    into the text, one prepared statement each) belong here; settings that change plans
    (``enable_indexscan``) do not reach a cached plan, while those read as it runs
    (``hnsw.ef_search``) do.

    ``binary`` asks for the rows in PostgreSQL's binary format: a ``bytea`` (a vector from
    ``vector_send``) then comes as it is stored, not as hex text twice its size to encode and
    decode.
    """
    connection.ensure_connection()
    with connection.wrap_database_errors:
        server_binding = psycopg.Cursor(connection.connection)
    if binary:
        server_binding.format = psycopg.pq.Format.BINARY
    cursor = (connection.make_debug_cursor(server_binding) if connection.queries_logged
              else connection.make_cursor(server_binding))
    with cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    if connection.queries_logged and connection.queries_log and connection.queries_log[-1]["sql"] is None:
        # Django logs what psycopg says it sent, and a prepared run sends only the statement's
        # name: log the statement itself, so captured queries (tests, DEBUG) can be read.
        connection.queries_log[-1]["sql"] = connection.ops.compose_sql(statement, params)
    return rows
