"""PostgreSQL's COPY for the importers' big inserts, with bulk_create everywhere else.

bulk_create cannot use its fast UNNEST form for a model with a geometry column, and its
per-value preparation plus psycopg's parsing of 14,000-placeholder statements made the
household upsert two thirds of a 100,000-row import. COPY into a temporary table followed by
one INSERT ... ON CONFLICT does the same upsert an order of magnitude faster. SQLite and
SpatiaLite keep bulk_create(update_conflicts=True), which gives the same result.
"""

from django.contrib.gis.db.models import GeometryField
from django.db import connection
from django.utils import timezone

from housing.importers.batching import WRITE_BATCH, lookup

# Rows are dicts of attname -> value (village_id, not village); missing fields take their
# model default. On PostgreSQL no model instance is built: at 100,000 rows, Model.__init__
# alone would be seconds.


def _fields(model):
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _tuples(fields, rows: list[dict]):
    now = timezone.now()
    plan = []
    for f in fields:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            plan.append((f.attname, "now", now))
        elif isinstance(f, GeometryField):
            plan.append((f.attname, "geometry", None))
        else:
            plan.append((f.attname, "value", f.get_default()))
    for row in rows:
        values = []
        for attname, kind, default in plan:
            if kind == "now":
                values.append(default)
            elif kind == "geometry":
                geometry = row.get(attname)
                # Hex EWKB: exact, and accepted by the geometry type's text input.
                values.append(geometry.hexewkb.decode() if geometry is not None else None)
            else:
                values.append(row.get(attname, default))
        yield values


def _copy(cursor, table: str, columns: list[str], rows) -> None:
    quote = connection.ops.quote_name
    sql = f"COPY {quote(table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    with cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def _new_ids(cursor, model, n: int) -> list[int]:
    """Draw n ids from the table's own sequence, so that COPY can write them with the rows.

    COPY returns nothing; knowing the ids beforehand is what lets the caller record the new
    rows in their history without reading them back by some other key.
    """
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
        [connection.ops.quote_name(model._meta.db_table), model._meta.pk.column, n],
    )
    return [pk for (pk,) in cursor.fetchall()]


def insert(model, rows: list[dict]) -> list[int]:
    """Insert new rows (no conflicts expected); return their primary keys, in order."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        objects = [model(**row) for row in rows]
        model.objects.bulk_create(objects, batch_size=WRITE_BATCH)
        return [obj.pk for obj in objects]
    fields = _fields(model)
    columns = [model._meta.pk.column] + [f.column for f in fields]
    with connection.cursor() as cursor:
        ids = _new_ids(cursor, model, len(rows))
        values = ([pk, *row] for pk, row in zip(ids, _tuples(fields, rows), strict=True))
        _copy(cursor, model._meta.db_table, columns, values)
    return ids


def upsert(
    model, rows: list[dict], *, unique_field: str, update_fields: list[str]
) -> dict[str, int]:
    """Insert `rows`, or update `update_fields` of the rows with the same `unique_field`.

    Returns unique value -> primary key for every row given.
    """
    if not rows:
        return {}
    if connection.vendor != "postgresql":
        model.objects.bulk_create(
            [model(**row) for row in rows],
            batch_size=WRITE_BATCH,
            update_conflicts=True,
            unique_fields=[unique_field],
            update_fields=update_fields,
        )
        values = [row[unique_field] for row in rows]
        return dict(lookup(model.objects.all(), unique_field, values, unique_field, "pk"))
    quote = connection.ops.quote_name
    fields = _fields(model)
    columns = [f.column for f in fields]
    column_list = ", ".join(quote(c) for c in columns)
    table = quote(model._meta.db_table)
    staging = quote(f"import_{model._meta.db_table}")
    updates = ", ".join(
        f"{quote(c)} = EXCLUDED.{quote(c)}"
        for c in (model._meta.get_field(name).column for name in update_fields)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {staging}")
        # Same column types as the table (geometry(Point,4326) included), no constraints.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {staging} ON COMMIT DROP AS "
            f"SELECT {column_list} FROM {table} WITH NO DATA"
        )
        _copy(cursor, f"import_{model._meta.db_table}", columns, _tuples(fields, rows))
        unique = quote(model._meta.get_field(unique_field).column)
        pk = quote(model._meta.pk.column)
        # RETURNING covers inserted and updated rows alike: no second query for the ids.
        cursor.execute(
            f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {staging} "
            f"ON CONFLICT ({unique}) DO UPDATE SET {updates} RETURNING {unique}, {pk}"
        )
        ids = dict(cursor.fetchall())
        cursor.execute(f"DROP TABLE {staging}")
    return ids
