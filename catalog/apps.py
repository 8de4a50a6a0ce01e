from django.apps import AppConfig
from django.db.backends.signals import connection_created


def set_hnsw_search_breadth(sender, connection, **kwargs):
    """Set the search breadth on a new connection, once per server connection.

    With a pool, Django "connects" for every request by taking a server connection from the
    pool: one that already has its breadth (a session setting) keeps it, and says so.
    """
    if connection.vendor != "postgresql":
        return
    from .selectors import set_search_breadth

    server_connection = connection.connection
    breadth = getattr(server_connection, "tokfeed_search_breadth", None)
    if breadth is None:
        server_connection.tokfeed_search_breadth = set_search_breadth(connection)
    else:
        connection.search_breadth = breadth


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self):
        # Every new connection searches at the breadth the catalog's size calls for.
        connection_created.connect(set_hnsw_search_breadth, dispatch_uid="catalog.set_hnsw_search_breadth")
