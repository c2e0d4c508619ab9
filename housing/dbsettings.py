"""PostgreSQL settings for the statements of one transaction, put back as they were."""

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
