"""History rows for our own bulk writes: the importers and the demo seeder.

bulk_create, bulk_update, COPY and INSERT ... ON CONFLICT send no model signals, so
django-simple-history records nothing for them by itself. After such a write,
`history_snapshot` copies the written rows, as they now are in the table, into the model's
historical table: one INSERT ... SELECT per chunk of ids (one statement on PostgreSQL). What
the history keeps is what the database holds (auto_now timestamps and defaults included), and
no Python object is built per row, so a 100,000-row import pays a few hundred milliseconds
per model rather than the seconds that bulk_create_with_history would.
"""

import datetime
from collections.abc import Iterable

from django.db import connection
from django.utils import timezone

from housing.dbsettings import id_array

CREATED = "+"
CHANGED = "~"
# Ids per statement on SQLite, well under its limit of bound variables.
SQLITE_CHUNK = 5000


def history_snapshot(
    model,
    pks: Iterable[int],
    *,
    history_type: str,
    reason: str = "",
    user=None,
    at: datetime.datetime | None = None,
) -> int:
    """Record the rows `pks` of `model` in its history as created ("+") or changed ("~").

    `reason` is stored as the change reason (we store the command's name, e.g.
    "import_households", so the admin's history says where a row came from); `user`, if
    given, as the user who made the change. Returns the number of history rows written.
    """
    if history_type not in (CREATED, CHANGED):
        raise ValueError(f"history_type must be {CREATED!r} or {CHANGED!r}, not {history_type!r}")
    pks = sorted(set(pks))
    if not pks:
        return 0
    history = model.history.model
    quote = connection.ops.quote_name
    history_columns = {f.column for f in history._meta.concrete_fields}
    # The historical model has every tracked field under the same column name as the model.
    tracked = [f.column for f in model._meta.concrete_fields if f.column in history_columns]
    extra = [
        history._meta.get_field(name).column
        for name in ("history_date", "history_type", "history_change_reason", "history_user")
    ]
    columns = ", ".join(quote(c) for c in tracked + extra)
    selected = ", ".join(quote(c) for c in tracked)
    params = [
        connection.ops.adapt_datetimefield_value(at or timezone.now()),
        history_type,
        reason or None,
        user.pk if user is not None else None,
    ]
    head = (
        f"INSERT INTO {quote(history._meta.db_table)} ({columns}) "
        f"SELECT {selected}, %s, %s, %s, %s FROM {quote(model._meta.db_table)} "
        f"WHERE {quote(model._meta.pk.column)}"
    )
    written = 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"{head} = ANY(%s::bigint[])", [*params, id_array(pks)])
            written += cursor.rowcount
        else:
            for start in range(0, len(pks), SQLITE_CHUNK):
                chunk = pks[start : start + SQLITE_CHUNK]
                marks = ", ".join(["%s"] * len(chunk))
                cursor.execute(f"{head} IN ({marks})", [*params, *chunk])
                written += cursor.rowcount
    return written
