"""Batch sizes and chunked lookups shared by the importers."""

from collections.abc import Iterable, Iterator, Sequence

# Rows per INSERT/UPDATE statement. Big enough to amortise round trips, small enough that
# psycopg's 65535-parameter limit and SQLite's variable limit are never near.
WRITE_BATCH = 1000
# bulk_update writes one CASE per field; its cost grows with the batch, so keep it smaller.
UPDATE_BATCH = 500
# Values per `IN (...)` lookup, for the same parameter limits.
LOOKUP_CHUNK = 5000


def chunked(values: Sequence, size: int = LOOKUP_CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def lookup(queryset, field: str, values: Iterable, *columns: str) -> list[tuple]:
    """`values_list(*columns)` of the rows whose `field` is in `values`, a chunk at a time."""
    values = sorted(set(values))
    rows: list[tuple] = []
    for chunk in chunked(values):
        rows.extend(queryset.filter(**{f"{field}__in": chunk}).values_list(*columns))
    return rows
