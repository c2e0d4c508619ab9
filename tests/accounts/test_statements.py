"""accounts.statements.fetch_all: the statements every request runs, prepared on PostgreSQL,
and otherwise exactly what Django's own cursor gives (rows, errors, the query log)."""

import datetime

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.statements import fetch_all

pytestmark = pytest.mark.django_db

postgis_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's"
)


def prepared(text: str) -> list[tuple]:
    """This connection's prepared statements whose text has `text` (and how often each ran
    with a generic or a custom plan)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements "
            "WHERE NOT from_sql AND statement LIKE %s",
            ["%" + text + "%"],
        )
        return cursor.fetchall()


def test_the_rows_are_those_of_djangos_cursor(make_user):
    user = make_user(username="fetched")
    sql = "SELECT id, username, is_active, date_joined FROM accounts_user WHERE username = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, ["fetched"])
        expected = cursor.fetchall()
    assert fetch_all(sql, ["fetched"]) == expected
    assert fetch_all(sql, ["nobody"]) == []
    assert expected[0][0] == user.pk


def test_the_query_log_has_the_statement_with_its_values():
    with CaptureQueriesContext(connection) as queries:
        for n in range(7):  # before and after PostgreSQL has it prepared
            assert fetch_all("SELECT %s + 1, upper(%s)", [n, "it's"]) == [(n + 1, "IT'S")]
    logged = [q["sql"] for q in queries.captured_queries]
    assert len(logged) == 7
    assert all("it''s" in sql and "%s" not in sql and "$1" not in sql for sql in logged)
    assert logged[6].startswith("SELECT 6 + 1")


@postgis_only
def test_a_statement_run_a_few_times_is_prepared_once_per_connection():
    sql = "SELECT %s::int * 2 AS anju_prepared_probe"
    for n in range(4):
        fetch_all(sql, [n])
    assert prepared("anju_prepared_probe") == []  # Django's threshold: 5 runs first
    for n in range(4, 12):
        assert fetch_all(sql, [n]) == [(n * 2,)]
    [(text, runs)] = prepared("anju_prepared_probe")
    assert "$1" in text and runs >= 6


@postgis_only
def test_djangos_own_cursors_are_never_prepared():
    with connection.cursor() as cursor:
        for n in range(10):
            cursor.execute("SELECT %s::int AS anju_client_probe", [n])
    assert prepared("anju_client_probe") == []


@postgis_only
def test_timestamps_come_back_in_the_connections_time_zone():
    at = timezone.now().replace(microsecond=0)
    [(value,)] = fetch_all("SELECT %s::timestamptz", [at])
    assert value == at and value.utcoffset() == datetime.timedelta(0)


def test_an_error_is_djangos_and_the_connection_goes_on():
    with pytest.raises(DatabaseError), transaction.atomic():
        fetch_all("SELECT * FROM anju_no_such_table WHERE id = %s", [1])
    assert fetch_all("SELECT %s", [3]) == [(3,)]
