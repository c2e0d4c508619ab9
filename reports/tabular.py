"""Writing rows to CSV and XLSX, streaming, with nothing a spreadsheet would run.

CSV is UTF-8 with a byte-order mark (so Excel opens Chinese text right) and every text cell
that a spreadsheet would take for a formula (starting with = + - @, a tab or a carriage
return) is neutralised with a leading apostrophe, as OWASP advises against CSV injection.
On PostgreSQL the rows of a query are streamed by `COPY (…) TO STDOUT` (the neutralising is
then done in the query, see reports.ledgers.neutral); elsewhere, and for rows computed in
Python, by the csv module. XLSX is written by XlsxWriter in constant-memory mode, with
strings never turned into formulas, URLs or numbers.
"""

import csv
import datetime
import decimal
import re
from dataclasses import dataclass

import xlsxwriter
from django.db import connection

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 5000


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # lazily translated: the header, in the export's language
    kind: str = "text"  # text | number | date | datetime
    width: int = 14  # XLSX column width, in characters


def neutralise(value):
    """A text cell a spreadsheet would run as a formula, made inert."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


def write_csv_rows(path, columns: list[Column], rows, job) -> int:
    """Rows computed in Python (a list or generator of tuples)."""
    text = [i for i, c in enumerate(columns) if c.kind == "text"]
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(BOM)
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([str(c.label) for c in columns])
        for row in rows:
            row = [_csv_cell(v) for v in row]
            for i in text:
                row[i] = neutralise(row[i])
            writer.writerow(row)
            count += 1
            job.advance()
    return count


def _jit_off(cursor) -> None:
    """A ledger's statement is long and its cost estimate high, which makes PostgreSQL
    JIT-compile it: seconds of compiling for a query that runs in a couple. Off for this
    export's session (set back by _jit_reset)."""
    cursor.execute("SET jit = off")


def _jit_reset(cursor) -> None:
    cursor.execute("RESET jit")


def query_rows(sql: str, params: list):
    """The rows of a statement, fetched in chunks (a server-side cursor on PostgreSQL)."""
    postgres = connection.vendor == "postgresql"
    if postgres:
        with connection.cursor() as cursor:
            _jit_off(cursor)
    try:
        with connection.chunked_cursor() as cursor:
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(ROWS_PER_CHUNK):
                yield from rows
    finally:
        if postgres:
            with connection.cursor() as cursor:
                _jit_reset(cursor)


def write_csv_query(path, columns: list[Column], statement: tuple[str, list], job) -> int:
    """The rows of a statement whose text columns are already neutralised in SQL: COPY on
    PostgreSQL (the database writes the CSV), the csv module elsewhere."""
    sql, params = statement
    if connection.vendor != "postgresql":
        return write_csv_rows(path, columns, query_rows(sql, params), job)
    header = [str(c.label) for c in columns]
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(BOM)
        csv.writer(handle, lineterminator="\n").writerow(header)
    with open(path, "ab") as out, connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's client-side-binding cursor: mogrify is exact
        statement_sql = raw.mogrify(sql, params)
        _jit_off(raw)
        try:
            with raw.copy(f"COPY ({statement_sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                for block in copy:
                    out.write(block)
                    lines = bytes(block).count(b"\n")
                    count += lines
                    # The connection is busy with the COPY: the count is written after it.
                    job.advance(lines, write=False)
        finally:
            _jit_reset(raw)
    job.flush()
    return count


def _parse_time(value: str):
    try:
        if len(value) == 10:
            return datetime.date.fromisoformat(value)
        return datetime.datetime.fromisoformat(value)
    except ValueError:
        return value


def write_xlsx(path, columns: list[Column], rows, job, *, sheet: str) -> int:
    """Rows (tuples, in the columns' order) to one sheet, in constant memory."""
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "default_date_format": "yyyy-mm-dd",
        },
    )
    try:
        workbook.set_properties({"title": sheet, "keywords": job.stamp.number})
        # Excel refuses these characters in a sheet name, and more than 31 of any.
        worksheet = workbook.add_worksheet(re.sub(r"[\[\]:*?/\\]", " ", sheet)[:31])
        bold = workbook.add_format({"bold": True, "bg_color": "#EEEEEE", "border": 1})
        date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
        time_format = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        for i, column in enumerate(columns):
            worksheet.set_column(i, i, column.width)
        worksheet.write_row(0, 0, [str(c.label) for c in columns], bold)
        worksheet.freeze_panes(1, 0)
        r = 0
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row):
                if value is None or value == "":
                    continue
                if isinstance(value, str) and columns[c].kind in ("date", "datetime"):
                    value = _parse_time(value)  # SQLite hands dates back as text
                if isinstance(value, datetime.datetime):
                    worksheet.write_datetime(r, c, value.replace(tzinfo=None), time_format)
                elif isinstance(value, datetime.date):
                    worksheet.write_datetime(r, c, value, date_format)
                elif isinstance(value, bool):
                    worksheet.write_string(r, c, str(value))
                elif isinstance(value, int | float | decimal.Decimal):
                    worksheet.write_number(r, c, float(value))
                else:
                    worksheet.write_string(r, c, str(value))
            job.advance()
        if r:
            worksheet.autofilter(0, 0, r, len(columns) - 1)
    finally:
        workbook.close()
    return r
