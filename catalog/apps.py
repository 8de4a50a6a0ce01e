from django.apps import AppConfig
from django.db.backends.signals import connection_created


def set_hnsw_search_breadth(sender, connection, **kwargs):
    """Give each new PostgreSQL connection our ``hnsw.ef_search``, so the common, shallow
    searches need no ``SET`` of their own (a round trip each, on every batch)."""
    from .selectors import CONNECTION_EF_SEARCH

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # A placeholder until pgvector loads, which then adopts it.
            cursor.execute("SELECT set_config('hnsw.ef_search', %s, false)", [str(CONNECTION_EF_SEARCH)])


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self):
        connection_created.connect(set_hnsw_search_breadth, dispatch_uid="catalog.set_hnsw_search_breadth")
