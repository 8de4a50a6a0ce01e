"""A PostgreSQL backend that starts its own server (``pgserver``) on first connection.

This is the embedded default of DESIGN.md: with no ``DATABASE_URL`` a newcomer gets a real
PostgreSQL 16 with pgvector, its data kept under ``TOKFEED_DATA_DIR`` (``var/`` by default).
Starting lazily, on the first connection rather than at settings import, keeps commands that
never touch the database (``check``, ``--help``) fast.
"""
