from django.apps import AppConfig
from django.db.backends.signals import connection_created


def set_hnsw_search_breadth(sender, connection, **kwargs):
    if connection.vendor == "postgresql":
        from .selectors import set_search_breadth

        set_search_breadth(connection)


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self):
        # Every new connection searches at the breadth the catalog's size calls for.
        connection_created.connect(set_hnsw_search_breadth, dispatch_uid="catalog.set_hnsw_search_breadth")
