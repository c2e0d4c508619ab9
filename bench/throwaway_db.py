"""A throw-away PostGIS database for a benchmark, on the server that DATABASE_URL names.

The main database is never touched: the benchmark creates its own, migrates it, and drops
it at the end.
"""

import sys
from urllib.parse import urlsplit, urlunsplit


class ThrowawayDatabase:
    def __init__(self, *, url: str, name: str, bench: str):
        parts = urlsplit(url)
        if parts.scheme not in ("postgis", "postgres", "postgresql"):
            sys.exit(
                f"{bench}: DATABASE_URL must be a PostGIS URL (postgis://user:pass@host:port/db); "
                "scripts/ensure_postgis.sh prints one."
            )
        if parts.path.strip("/") == name:
            sys.exit(f"{bench}: DATABASE_URL already names {name}; give the main database.")
        self.name = name
        self.maintenance = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
        self.psycopg_url = urlunsplit(("postgresql", parts.netloc, f"/{name}", "", ""))
        self.django_url = urlunsplit(("postgis", parts.netloc, f"/{name}", "", ""))

    def create(self) -> None:
        import psycopg

        with psycopg.connect(self.maintenance, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
            conn.execute(f'CREATE DATABASE "{self.name}"')
        with psycopg.connect(self.psycopg_url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.maintenance, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
