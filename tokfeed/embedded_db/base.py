from django.db.backends.postgresql import base as postgresql

from .server import ensure_database, ensure_server


class DatabaseWrapper(postgresql.DatabaseWrapper):
    """PostgreSQL, reached through the socket of a server this process made sure is running."""

    def get_connection_params(self):
        options = self.settings_dict["OPTIONS"]
        data_dir = options["data_dir"]
        host, port, user = ensure_server(data_dir, (options.get("pool") or {}).get("max_size", 1))
        self.settings_dict.update(HOST=host, PORT=port, USER=user)
        params = super().get_connection_params()
        del params["data_dir"]
        # Django creates test databases itself (through the "postgres" database); the
        # project's own database is created here on first use.
        if params["dbname"] != "postgres" and not params["dbname"].startswith("test_"):
            ensure_database((host, port, user), params["dbname"])
        return params
