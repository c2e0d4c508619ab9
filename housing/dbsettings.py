"""PostgreSQL specifics: settings for one transaction's statements, arrays of ids."""

from contextlib import contextmanager

from django.db import connection


@contextmanager
def local_settings(cursor, settings: dict):
    """`settings` (name -> value) for the statements inside, each as it was afterwards.

    set_config(…, true) is SET LOCAL: for the rest of the transaction only, so on an error
    the caller's rollback takes them back too. Elsewhere than PostgreSQL: nothing is set.
    """
    if connection.vendor != "postgresql" or not settings:
        yield
        return
    names = list(settings)
    cursor.execute(f"SELECT {', '.join(['current_setting(%s)'] * len(names))}", names)
    before = dict(zip(names, cursor.fetchone(), strict=True))
    _set(cursor, settings)
    yield
    _set(cursor, before)


def _set(cursor, settings: dict) -> None:
    cursor.execute(
        "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(settings)),
        [str(value) for item in settings.items() for value in item],
    )


def id_array(values) -> str:
    """A PostgreSQL array literal of integer ids ('{1,2,3}'), for `= ANY(%s::bigint[])`.

    psycopg adapts a list element by element: 0.12 s for the 100,000 ids of an import,
    sent six times (history, map refresh); the ids' text joined is the same array in less
    than half the time, server parsing included. int() keeps anything but integers out.
    """
    return "{" + ",".join(map(str, map(int, values))) + "}"
