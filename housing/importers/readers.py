"""Reading CSV and XLSX tables whose headers may be English field names or Chinese labels."""

import csv
import datetime
import functools
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.utils.translation import gettext as _

from housing.importers.report import ImportFailed, Problem

# "*档案编号", "建筑面积（㎡）", "Floor area (m2)": a required-marker and a unit in brackets
# are common in county templates and carry no meaning for matching.
_DECORATION = re.compile(r"[\(（][^\)）]*[\)）]\s*$")


def header_key(text: str) -> str:
    text = unicodedata.normalize("NFKC", str(text or "")).replace("\ufeff", "").strip()
    text = _DECORATION.sub("", text)
    return re.sub(r"[\s_\-*]", "", text).casefold()


@functools.lru_cache(maxsize=4096)  # a file repeats its few choices on every row
def value_key(text: str) -> str:
    """Matching key for a choice written in a cell: case, spaces and separators ignored."""
    return re.sub(r"[\s_\-:]", "", unicodedata.normalize("NFKC", str(text or ""))).casefold()


@dataclass
class Table:
    file: str  # the name shown in reports
    headers: dict[str, str]  # field -> the header as written in the file
    columns: dict[str, int]  # field -> position
    rows: list[tuple[int, list[str]]]  # (row number with the header as row 1, cells)

    def has(self, field: str) -> bool:
        return field in self.columns

    def cell(self, cells: list[str], field: str) -> str:
        index = self.columns.get(field)
        if index is None or index >= len(cells):
            return ""
        return cells[index]

    def problem(self, row: int, field: str, value: str, message: str) -> Problem:
        return Problem(
            file=self.file, row=row, column=self.headers[field], value=value, message=message
        )


def cell_text(value) -> str:
    """A cell as text; whole numbers stored as floats by Excel lose their ".0"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    if isinstance(value, datetime.datetime):
        return value.date().isoformat() if value.time() == datetime.time() else value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value).strip()


def _csv_rows(path: Path, name: str) -> list[list[str]]:
    try:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark.
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return [[cell.strip() for cell in row] for row in csv.reader(handle)]
    except UnicodeDecodeError:
        raise ImportFailed(
            [
                Problem(
                    file=name,
                    message=_(
                        "The file is not UTF-8 text. Save it as “CSV UTF-8” (or as .xlsx) "
                        "and import it again."
                    ),
                )
            ]
        ) from None
    except csv.Error as exc:
        raise ImportFailed(
            [
                Problem(
                    file=name, message=_("The CSV file cannot be read: %(error)s") % {"error": exc}
                )
            ]
        ) from None


def _xlsx_rows(path: Path, name: str) -> list[list[str]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ImportFailed(
            [
                Problem(
                    file=name, message=_("The XLSX file cannot be read: %(error)s") % {"error": exc}
                )
            ]
        ) from None
    try:
        sheet = workbook.worksheets[0]
        return [[cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()


def read_table(
    path, *, aliases: dict[str, tuple[str, ...]], required: tuple[str, ...] = ()
) -> Table:
    """Read the first sheet of an XLSX or a CSV; map its headers to fields through `aliases`.

    Columns that match no field are ignored (a serial-number column, remarks). Fully blank
    rows are skipped. Raises ImportFailed for a file that cannot be read or lacks a column.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise ImportFailed([Problem(file=name, message=_("The file does not exist."))])
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        raw = _csv_rows(path, name)
    elif suffix in (".xlsx", ".xlsm"):
        raw = _xlsx_rows(path, name)
    else:
        raise ImportFailed(
            [
                Problem(
                    file=name,
                    message=_("Unsupported file type %(suffix)s: use .csv (UTF-8) or .xlsx.")
                    % {"suffix": suffix or "?"},
                )
            ]
        )
    if not raw or not any(raw[0]):
        raise ImportFailed([Problem(file=name, message=_("The file has no header row."))])

    lookup = {header_key(alias): field for field, names in aliases.items() for alias in names}
    headers: dict[str, str] = {}
    columns: dict[str, int] = {}
    problems = []
    for index, header in enumerate(raw[0]):
        field = lookup.get(header_key(header))
        if field is None:
            continue
        if field in columns:
            problems.append(
                Problem(
                    file=name,
                    row=1,
                    column=header,
                    value=header,
                    message=_("Two columns mean the same thing: %(first)s and %(second)s.")
                    % {"first": headers[field], "second": header},
                )
            )
            continue
        headers[field] = header
        columns[field] = index
    found = [h for h in raw[0] if h]
    for field in required:
        if field not in columns:
            problems.append(
                Problem(
                    file=name,
                    message=_(
                        "The required column %(column)s is missing (accepted headers: "
                        "%(aliases)s). The file has: %(found)s."
                    )
                    % {
                        "column": field,
                        "aliases": ", ".join(aliases[field]),
                        "found": ", ".join(found),
                    },
                )
            )
    if problems:
        raise ImportFailed(problems)
    rows = [
        (number, cells)
        for number, cells in enumerate(raw[1:], start=2)
        if any(cell for cell in cells)
    ]
    return Table(file=name, headers=headers, columns=columns, rows=rows)
