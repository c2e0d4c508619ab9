"""Batch sizes and chunked lookups shared by the importers."""

from collections.abc import Iterable, Iterator, Sequence

from django.db import connection
from django.db.models.expressions import RawSQL

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


def matching(queryset, field: str, values: Iterable) -> Iterator:
    """`queryset` narrowed to rows whose `field` is in `values`: on PostgreSQL one queryset
    with the values as one array parameter, elsewhere one per chunk of LOOKUP_CHUNK."""
    values = sorted(set(values))
    if not values:
        return
    if connection.vendor == "postgresql":
        # `IN (SELECT unnest(array))`: one parameter, hashed, however many values; 20
        # statements of 5,000 placeholders each took seconds to parse and plan.
        array = "bigint[]" if all(isinstance(v, int) for v in values) else "text[]"
        yield queryset.filter(**{f"{field}__in": RawSQL(f"SELECT unnest(%s::{array})", [values])})
        return
    for chunk in chunked(values):
        yield queryset.filter(**{f"{field}__in": chunk})


def lookup(queryset, field: str, values: Iterable, *columns: str) -> list[tuple]:
    """`values_list(*columns)` of the rows whose `field` is in `values`."""
    rows: list[tuple] = []
    for part in matching(queryset, field, values):
        rows.extend(part.values_list(*columns))
    return rows
