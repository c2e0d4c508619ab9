"""The statements every request runs, prepared by PostgreSQL once per connection.

Django's PostgreSQL connections bind values on the client (psycopg's ClientCursor quotes them
into the text), so PostgreSQL parses and plans each statement every time it runs. For the
statements a request always runs, the same text with other values, that is most of their
cost: a map tile's query that finds nothing took 0.30 ms through Django's cursor and 0.11 ms
prepared, the same statement with the same values (at 300,000 households; the whole tile
request, from about 2 ms to 1.0 ms with the session read along with its user:
bench/bench_maps.py).

fetch_all() runs such a statement through a server-side binding cursor on Django's own
connection: the same transaction, the same error translation and query log
(CaptureQueriesContext sees it), the same time zone. psycopg prepares a statement once the
connection has run it prepare_threshold times with values of the same types (settings: 5;
Django's default, None, prepares nothing) and keeps the last prepared_max (100) of them.
Django's own cursors bind on the client and are never prepared, whatever the threshold.
A statement is prepared per connection: with DJANGO_CONN_MAX_AGE=0 every request starts
afresh and nothing is gained, nothing lost.
Behind PgBouncer in transaction mode before 1.21, DJANGO_DB_PREPARED_STATEMENTS=false. A
release that changes the type of a column these statements return must restart gunicorn
after `migrate` (docs/deploy.md does): PostgreSQL refuses a prepared statement whose result
type changed until the connection closes.

On SpatiaLite it is Django's ordinary cursor.
"""

import psycopg
from django.db import connections

# The PostgreSQL backend's own helpers, as its create_cursor() uses them.
from django.db.backends.postgresql.base import TIMESTAMPTZ_OID, CursorDebugWrapper
from django.db.backends.postgresql.psycopg_any import register_tzloader
from psycopg.pq import Format


class _DebugCursor(CursorDebugWrapper):
    """Django's query log (DEBUG, CaptureQueriesContext) with the statement as it would run
    with its values: a prepared statement's own text is `$1` placeholders, or none at all."""

    def execute(self, sql, params=None):
        with self.debug_sql(self.db.ops.compose_sql(sql, params), params):
            return self._execute_with_wrappers(sql, params, many=False, executor=self._execute)


def _server_binding_cursor(connection):
    """connection.cursor() with psycopg's server-side binding Cursor in place of the
    ClientCursor that DatabaseWrapper.create_cursor() makes."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = psycopg.Cursor(connection.connection)
        tzloader = connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
        if connection.timezone != tzloader.timezone:
            register_tzloader(connection.timezone, cursor)
    connection.validate_thread_sharing()
    if connection.queries_logged:
        return _DebugCursor(cursor, connection)
    return connection.make_cursor(cursor)


def fetch_all(sql: str, params, *, using: str = "default") -> list[tuple]:
    """Every row of `sql` (%s placeholders) run with `params`: on PostgreSQL a prepared
    statement once the connection has run it a few times."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    with _server_binding_cursor(connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
