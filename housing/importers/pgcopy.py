"""PostgreSQL's COPY for the importers' big inserts, with bulk_create everywhere else.

bulk_create cannot use its fast UNNEST form for a model with a geometry column, and its
per-value preparation plus psycopg's parsing of 14,000-placeholder statements made the
household upsert two thirds of a 100,000-row import. New rows are COPY'd straight into the
table with ids drawn from its sequence beforehand; rows that already exist are COPY'd into a
temporary table and updated from it in one UPDATE … FROM. SQLite and SpatiaLite keep
bulk_create(update_conflicts=True), which gives the same result.
"""

import struct
from collections.abc import Iterable

from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.geos import GEOSGeometry, Point
from django.db import connection
from django.utils import timezone

from housing.importers.batching import WRITE_BATCH, lookup

# Rows are dicts of attname -> value (village_id, not village); missing fields take their
# model default. On PostgreSQL no model instance is built: at 100,000 rows, Model.__init__
# alone would be seconds. A geometry value is a GEOS geometry or, for a point, a WGS84
# (lon, lat) pair: building a GEOS Point per row only to serialise it again cost more than
# the COPY of the row.

# Hex EWKB of a little-endian point with an SRID (type 1 | 0x20000000), SRID 4326.
_WGS84_POINT = struct.Struct("<BIIdd")


def _geometry(value) -> str | None:
    """A geometry value as hex EWKB: exact, and accepted by the geometry type's text input."""
    if value is None:
        return None
    if isinstance(value, GEOSGeometry):
        return value.hexewkb.decode()
    lon, lat = value
    return _WGS84_POINT.pack(1, 0x20000001, 4326, lon, lat).hex()


def _instance(model, row: dict, geometries: list[str]):
    """A model instance from a row, its (lon, lat) pairs made points (the bulk_create path)."""
    for name in geometries:
        value = row.get(name)
        if value is not None and not isinstance(value, GEOSGeometry):
            row = {**row, name: Point(*value, srid=4326)}
    return model(**row)


def _instances(model, rows: list[dict]) -> list:
    geometries = [f.attname for f in _fields(model) if isinstance(f, GeometryField)]
    return [_instance(model, row, geometries) for row in rows]


def _fields(model):
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _tuples(fields, rows: list[dict]):
    """Each row's values in `fields` order: the row's value or the field's default, now for
    auto_now fields, geometries as EWKT. Per row one comprehension, then the few special
    columns patched (a branch per cell was a tenth of a 100,000-row import)."""
    now = timezone.now()
    plan, stamped, geometries = [], [], []
    for at, f in enumerate(fields):
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            plan.append((f.attname, now))
            stamped.append(at)
        elif isinstance(f, GeometryField):
            plan.append((f.attname, None))
            geometries.append(at)
        else:
            plan.append((f.attname, f.get_default()))
    for row in rows:
        get = row.get
        values = [get(attname, default) for attname, default in plan]
        for at in stamped:
            values[at] = now
        for at in geometries:
            values[at] = _geometry(values[at])
        yield values


def _copy(cursor, table: str, columns: list[str], rows) -> None:
    quote = connection.ops.quote_name
    sql = f"COPY {quote(table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    # psycopg's copy() bypasses Django's cursor wrapper: wrap its errors as Django's (a
    # unique violation is then an IntegrityError, as from any other write).
    with connection.wrap_database_errors, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def _new_ids(cursor, model, n: int) -> list[int]:
    """Draw n ids from the table's own sequence, so that COPY can write them with the rows.

    COPY returns nothing; knowing the ids beforehand is what lets the caller record the new
    rows in their history without reading them back by some other key.
    """
    # Drawn in one statement, the ids are nearly always one unbroken run, which two numbers
    # describe; only if other sessions drew ids in between are they all sent back.
    # The sequence's name looked up once: pg_get_serial_sequence per row was most of the time.
    cursor.execute(
        "SELECT pg_get_serial_sequence(%s, %s)",
        [connection.ops.quote_name(model._meta.db_table), model._meta.pk.column],
    )
    (sequence,) = cursor.fetchone()
    cursor.execute(
        "WITH drawn AS (SELECT nextval(%s::regclass) AS id FROM generate_series(1, %s)) "
        "SELECT min(id), max(id), "
        "       CASE WHEN max(id) - min(id) + 1 = count(*) THEN NULL ELSE array_agg(id) END "
        "FROM drawn",
        [sequence, n],
    )
    low, high, scattered = cursor.fetchone()
    return list(range(low, high + 1)) if scattered is None else list(scattered)


def insert(model, rows: list[dict]) -> list[int]:
    """Insert new rows (no conflicts expected); return their primary keys, in order."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        objects = _instances(model, rows)
        model.objects.bulk_create(objects, batch_size=WRITE_BATCH)
        return [obj.pk for obj in objects]
    return insert_stream(model, rows, len(rows))


def insert_stream(model, rows: Iterable[dict], n: int) -> list[int]:
    """insert() of rows that come as they are made, n at the most (PostgreSQL): each is
    COPY'd as it comes, so that the caller's making of the next one and the database's
    storing of this one run side by side. Returns the ids of the rows written, in order."""
    fields = _fields(model)
    columns = [model._meta.pk.column] + [f.column for f in fields]
    written: list[int] = []
    with connection.cursor() as cursor:
        drawn = iter(_new_ids(cursor, model, n))

        def values():
            for values in _tuples(fields, rows):
                pk = next(drawn, None)
                if pk is None:
                    raise ValueError(f"more than the {n} rows announced")
                written.append(pk)
                yield [pk, *values]

        _copy(cursor, model._meta.db_table, columns, values())
    return written


def upsert(
    model,
    rows: list[dict],
    *,
    unique_field: str,
    update_fields: list[str],
    existing: dict | None = None,
) -> dict[str, int]:
    """Insert `rows`, or update `update_fields` of the rows with the same `unique_field`.

    `existing`: unique value -> primary key of the rows already in the table, if the caller
    has just read them in this transaction (else they are read here). Returns unique value
    -> primary key for every row given.
    """
    if not rows:
        return {}
    if connection.vendor != "postgresql":
        model.objects.bulk_create(
            _instances(model, rows),
            batch_size=WRITE_BATCH,
            update_conflicts=True,
            unique_fields=[unique_field],
            update_fields=update_fields,
        )
        values = [row[unique_field] for row in rows]
        return dict(lookup(model.objects.all(), unique_field, values, unique_field, "pk"))
    keys = [row[unique_field] for row in rows]
    if existing is None:
        existing = dict(lookup(model.objects.all(), unique_field, keys, unique_field, "pk"))
    new = [row for row in rows if row[unique_field] not in existing]
    old = [row for row in rows if row[unique_field] in existing]
    ids = {key: existing[key] for key in keys if key in existing}
    ids.update(zip((row[unique_field] for row in new), insert(model, new), strict=True))
    update(model, old, update_fields=update_fields, ids=existing, key=unique_field)
    return ids


def update(model, rows: list[dict], *, update_fields: list[str], ids: dict, key: str) -> None:
    """Set `update_fields` of the rows whose `key` value maps to a primary key in `ids`:
    COPY into a temporary table, then one UPDATE … FROM it."""
    if not rows:
        return
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in update_fields]
    pk = quote(model._meta.pk.column)
    table = quote(model._meta.db_table)
    staging_name = f"import_{model._meta.db_table}"
    staging = quote(staging_name)
    columns = ", ".join(quote(f.column) for f in fields)
    sets = ", ".join(f"{quote(f.column)} = s.{quote(f.column)}" for f in fields)
    values = (
        [ids[row[key]], *values] for row, values in zip(rows, _tuples(fields, rows), strict=True)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {staging}")
        # Same column types as the table (geometry(Point,4326) included), no constraints.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {staging} ON COMMIT DROP AS "
            f"SELECT {pk}, {columns} FROM {table} WITH NO DATA"
        )
        _copy(cursor, staging_name, [model._meta.pk.column] + [f.column for f in fields], values)
        cursor.execute(f"UPDATE {table} t SET {sets} FROM {staging} s WHERE t.{pk} = s.{pk}")
        cursor.execute(f"DROP TABLE {staging}")


# What autovacuum waits for before it re-analyses a table: this share of its rows changed
# (autovacuum_analyze_scale_factor), and not fewer rows than ANALYZE_MIN_ROWS.
ANALYZE_SHARE = 0.1
ANALYZE_MIN_ROWS = 1000


def analyze(written: dict, *, whole: bool = False) -> None:
    """ANALYZE the tables of `written` (model -> rows this load wrote) that it changed enough
    to make their planner statistics stale, before the statements that follow in the same
    transaction (the map refresh) are planned for the tables as they were: empty, after a
    first import, so that joins of 100,000 rows ran as nested loops. PostgreSQL only.

    Only the key columns (primary and foreign keys: what those statements join and filter
    on), a twentieth of the time of the whole table with its text and geometry columns. A
    column-list ANALYZE leaves autovacuum's change counters as they were, so autovacuum
    still analyses the whole table after the commit, as it would have without this.
    `whole`: every column (the map tables, whose tiles filter on codes and grades); a count
    of math.inf: the whole table was rewritten.
    """
    if connection.vendor != "postgresql":
        return
    models = {model._meta.db_table: model for model, n in written.items() if n >= ANALYZE_MIN_ROWS}
    if not models:
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        # reltuples: the row count the statistics hold, -1 when never analysed.
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class WHERE oid = ANY(%s::regclass[])",
            [list(models)],
        )
        for name, rows in sorted(cursor.fetchall()):
            model = models[name]
            if written[model] < ANALYZE_SHARE * rows:
                continue
            if whole:
                cursor.execute(f"ANALYZE {quote(name)}")
                continue
            keys = [f.column for f in model._meta.concrete_fields if f.primary_key or f.is_relation]
            cursor.execute(f"ANALYZE {quote(name)} ({', '.join(quote(c) for c in keys)})")
