#!/usr/bin/env python
"""Benchmark: the bulk household importer against a raw COPY of the same rows.

    DATABASE_URL=$(bash scripts/ensure_postgis.sh) .venv/bin/python bench/bench_import.py [--rows N]

Needs a PostGIS server (DATABASE_URL). It creates a throw-away database `anju_bench` on that
server (with the postgis extension), migrates it, and drops it at the end; the database named
in DATABASE_URL is never touched. It writes a CSV of N synthetic households (valid ID
numbers) to a temp dir and times, each from empty tables:

  COPY      the floor: the same rows, already converted to column values in memory with
            their ids (not timed), COPY'd through psycopg into housing_household and
            housing_house, in one transaction with its commit; nothing else (no validation,
            id sequence, history or map);
  ours      housing.importers.import_households on all N rows (read, validate, bulk write,
            history, map refresh, commit), with where its time went (the new households are
            checked while COPY stores them: that checking is counted in "COPY");
  re-import the same file again (every household updated, houses unchanged);
  ORM       optional (--orm-rows, 0 to skip): per row Household(...).full_clean(); save();
            House(...).full_clean(); save(), in one transaction, on the first --orm-rows rows,
            extrapolated per row to N.

--repeat R times the COPY and the import R times each, alternately, and keeps the fastest of
each (the machine may be shared). It prints "import N / COPY N = ratio× (goal ≤ 3×)".
"""

import argparse
import csv
import datetime
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.throwaway_db import ThrowawayDatabase  # noqa: E402

BENCH_DB = "anju_bench"
GOAL = 3.0  # the import may take at most this many times the raw COPY
HEADER = [
    "archive_no",
    "village_code",
    "head_name",
    "head_id_number",
    "phone",
    "address",
    "longitude",
    "latitude",
    "key_group",
    "structure_type",
    "storeys",
    "floor_area",
    "year_built",
    "grade",
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100000, help="Household rows (default 100000).")
    parser.add_argument(
        "--orm-rows",
        type=int,
        default=2000,
        help="Rows for the per-row ORM baseline, extrapolated to --rows (0: skip it).",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="Time COPY and import this many times each."
    )
    parser.add_argument("--seed", type=int, default=2026)
    return parser.parse_args()


def make_regions() -> list[str]:
    """A county with 10 townships of 10 villages each; returns the village codes."""
    from housing.models import Region, RegionLevel

    province = Region.objects.create(code="52", name="贵州省", level=RegionLevel.PROVINCE)
    city = Region.objects.create(
        code="5203", name="遵义市", level=RegionLevel.CITY, parent=province
    )
    county = Region.objects.create(
        code="520399", name="安居示范县", level=RegionLevel.COUNTY, parent=city
    )
    villages = []
    for t in range(10):
        township = Region.objects.create(
            code=f"520399{100 + t}", name=f"镇{t}", level=RegionLevel.TOWNSHIP, parent=county
        )
        for v in range(10):
            code = f"{township.code}{200 + v}"
            Region.objects.create(
                code=code, name=f"村{t}-{v}", level=RegionLevel.VILLAGE, parent=township
            )
            villages.append(code)
    return villages


def write_csv(path: Path, rows: int, villages: list[str], seed: int) -> None:
    from housing import idnumbers

    rng = random.Random(seed)
    groups = ["低保户", "分散供养特困人员", "易返贫致贫户", "minimum_income_marginal", ""]
    structures = ["土木", "砖木", "砖混", "earth_wood", "石木", "窑洞", ""]
    grades = ["A", "B", "C", "D", "C级", "D级", ""]
    start = datetime.date(1940, 1, 1)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            birth = start + datetime.timedelta(days=rng.randrange(0, 60 * 365))
            writer.writerow(
                [
                    f"BJ{i:08d}",
                    rng.choice(villages),
                    f"户主{i}",
                    idnumbers.make("520399", birth, i % 1000),
                    f"138{rng.randrange(10**8):08d}",
                    f"安居示范县 {i} 号",
                    f"{107.9 + rng.random() * 0.2:.6f}",
                    f"{27.2 + rng.random() * 0.2:.6f}",
                    rng.choice(groups),
                    rng.choice(structures),
                    rng.randint(1, 3),
                    f"{rng.uniform(30, 180):.2f}",
                    rng.randint(1960, 2015),
                    rng.choice(grades),
                ]
            )


def empty_tables() -> None:
    """Every table an import writes, empty, with fresh statistics (as a new database's)."""
    from django.db import connection

    tables = (
        "housing_familymember, housing_house, housing_household, housing_historicalhousehold, "
        "housing_historicalhouse, housing_historicalfamilymember, maps_mappoint, maps_mapcell"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        cursor.execute(f"ANALYZE {tables}")


class Breakdown:
    """Where an import's time goes: each SQL statement by what it writes, COPY, and the rest
    (reading, checking and preparing rows in Python)."""

    KINDS = ("map refresh", "history", "ANALYZE", "COPY", "other SQL", "commit")

    def __init__(self):
        self.seconds = defaultdict(float)

    def kind(self, sql: str) -> str:
        if sql.lstrip().startswith("ANALYZE"):
            return "ANALYZE"
        if "maps_" in sql:
            return "map refresh"
        if "historical" in sql:
            return "history"
        return "other SQL"

    def statement(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds[self.kind(sql)] += time.perf_counter() - started

    @contextmanager
    def watching(self):
        from django.db import connections

        from housing.importers import pgcopy

        connection = connections["default"]
        copy, commit = pgcopy._copy, connection.commit

        def timed(kind: str, function):
            def call(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    self.seconds[kind] += time.perf_counter() - started

            return call

        # COPY and the commit (the WAL flush of everything written) bypass the wrappers.
        pgcopy._copy = timed("COPY", copy)
        connection.commit = timed("commit", commit)
        try:
            with connection.execute_wrapper(self.statement):
                yield self
        finally:
            pgcopy._copy = copy
            del connection.commit

    def report(self, total: float) -> str:
        parts = [(kind, self.seconds[kind]) for kind in self.KINDS]
        rest = total - sum(seconds for _kind, seconds in parts)
        parts.insert(0, ("read, check, prepare (Python)", rest))
        return "\n".join(
            f"           {kind:<30} {seconds:7.2f} s  {100 * seconds / total:5.1f} %"
            for kind, seconds in parts
        )


def run_ours(path: Path, breakdown: Breakdown | None = None) -> float:
    from housing.importers import import_households

    if breakdown is None:
        started = time.perf_counter()
        import_households(path=path)
        return time.perf_counter() - started
    with breakdown.watching():
        started = time.perf_counter()
        import_households(path=path)
        return time.perf_counter() - started


def copy_rows(path: Path) -> tuple[list[str], list[list], list[str], list[list]]:
    """The file's rows as the import stores them: households and houses, column values in
    table order, ready for COPY (geometry as EWKT). Built before the timing starts."""
    from django.contrib.gis.db.models import GeometryField
    from django.utils import timezone

    from housing import idnumbers
    from housing.importers.choices import choice_value
    from housing.importers.readers import value_key
    from housing.models import House, Household, KeyGroup, LocationSource, Region

    villages = dict(Region.objects.filter(level="village").values_list("code", "pk"))
    groups = {value_key(n): pk for pk, n in KeyGroup.objects.values_list("pk", "name")}
    groups.update({value_key(c): pk for pk, c in KeyGroup.objects.values_list("pk", "code")})
    now = timezone.now()

    def table(model, values: dict) -> list:
        row = []
        for f in model._meta.concrete_fields:
            if f.primary_key:
                continue
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                row.append(now)
            elif f.attname in values:
                row.append(values[f.attname])
            elif isinstance(f, GeometryField):
                row.append(None)
            else:
                row.append(f.get_default())
        return row

    households, houses = [], []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            households.append(
                table(
                    Household,
                    {
                        "archive_no": row["archive_no"],
                        "village_id": villages[row["village_code"]],
                        "head_name": row["head_name"],
                        "head_id_number": idnumbers.normalize(row["head_id_number"]),
                        "phone": row["phone"],
                        "address": row["address"],
                        "location": f"SRID=4326;POINT({row['longitude']} {row['latitude']})",
                        "location_source": LocationSource.IMPORTED,
                        "key_group_id": groups.get(value_key(row["key_group"])),
                    },
                )
            )
            houses.append(
                table(
                    House,
                    {
                        "household_id": None,  # the household's id, drawn when copying
                        "is_current": True,
                        "structure_type": choice_value("structure", row["structure_type"]) or "",
                        "storeys": int(row["storeys"]),
                        "floor_area": row["floor_area"],
                        "year_built": int(row["year_built"]),
                        "safety_grade": choice_value("grade", row["grade"]) or "",
                    },
                )
            )

    def columns(model) -> list[str]:
        return [model._meta.pk.column] + [
            f.column for f in model._meta.concrete_fields if not f.primary_key
        ]

    return columns(Household), households, columns(House), houses


def run_copy(prepared) -> float:
    """COPY the prepared rows into housing_household and housing_house, and commit.

    The tables were emptied with RESTART IDENTITY, so the rows take ids 1..N, written by
    COPY like every other column (the sequences are left behind: the import, next, draws
    its own ids from them)."""
    from django.db import connection, transaction

    household_columns, households, house_columns, houses = prepared
    owner = house_columns.index("household_id") - 1  # position among the non-pk values
    quote = connection.ops.quote_name
    house_rows = []
    for pk, row in enumerate(houses, start=1):
        row = list(row)
        row[owner] = pk  # house k belongs to household k
        house_rows.append([pk, *row])

    def copy(cursor, table: str, columns: list[str], rows) -> None:
        names = ", ".join(quote(c) for c in columns)
        with cursor.copy(f"COPY {quote(table)} ({names}) FROM STDIN") as stream:
            for row in rows:
                stream.write_row(row)

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        copy(
            cursor,
            "housing_household",
            household_columns,
            ([pk, *row] for pk, row in enumerate(households, start=1)),
        )
        copy(cursor, "housing_house", house_columns, house_rows)
    return time.perf_counter() - started


def run_orm(path: Path, limit: int) -> float:
    """The naive way: validate and save each household and each house on its own."""
    from django.contrib.gis.geos import Point
    from django.db import transaction

    from housing import idnumbers
    from housing.importers.choices import choice_value
    from housing.importers.readers import value_key
    from housing.models import House, Household, KeyGroup, LocationSource, Region

    villages = dict(Region.objects.filter(level="village").values_list("code", "pk"))
    groups = {value_key(n): pk for pk, n in KeyGroup.objects.values_list("pk", "name")}
    groups.update({value_key(c): pk for pk, c in KeyGroup.objects.values_list("pk", "code")})
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [row for _, row in zip(range(limit), csv.DictReader(handle), strict=False)]

    started = time.perf_counter()
    with transaction.atomic():
        for row in rows:
            household = Household(
                archive_no=row["archive_no"],
                village_id=villages[row["village_code"]],
                head_name=row["head_name"],
                head_id_number=idnumbers.normalize(row["head_id_number"]),
                phone=row["phone"],
                address=row["address"],
                location=Point(float(row["longitude"]), float(row["latitude"]), srid=4326),
                location_source=LocationSource.IMPORTED,
                key_group_id=groups.get(value_key(row["key_group"])),
            )
            household.full_clean()
            household.save()
            house = House(
                household=household,
                is_current=True,
                structure_type=choice_value("structure", row["structure_type"]) or "",
                storeys=int(row["storeys"]),
                floor_area=row["floor_area"],
                year_built=int(row["year_built"]),
                safety_grade=choice_value("grade", row["grade"]) or "",
            )
            house.full_clean()
            house.save()
    return time.perf_counter() - started


def main() -> None:
    args = parse_args()
    url = os.environ.get("DATABASE_URL", "")
    database = ThrowawayDatabase(url=url, name=BENCH_DB, bench="bench_import")
    database.create()
    django_url = database.django_url
    try:
        os.environ["DATABASE_URL"] = django_url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection, connections

        from housing.models import House, Household
        from maps.models import MapPoint

        call_command("migrate", verbosity=0)
        villages = make_regions()
        with connection.cursor() as cursor:
            cursor.execute("SELECT split_part(version(), ' ', 2), postgis_lib_version()")
            pg_version, postgis_version = cursor.fetchone()

        n = args.rows
        with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp:
            path = Path(tmp) / "households.csv"
            write_csv(path, n, villages, args.seed)
            size_mb = path.stat().st_size / 1e6
            print(
                f"bench_import: {n} household rows ({size_mb:.1f} MB CSV), PostgreSQL "
                f"{pg_version}, PostGIS {postgis_version}, database {BENCH_DB}"
            )
            prepared = copy_rows(path)

            copies, imports, breakdowns = [], [], []
            for _round in range(max(1, args.repeat)):
                empty_tables()
                copies.append(run_copy(prepared))
                assert Household.objects.count() == n and House.objects.count() == n
                empty_tables()
                breakdown = Breakdown()
                imports.append(run_ours(path, breakdown))
                breakdowns.append(breakdown)
                assert Household.objects.count() == n and House.objects.count() == n
                assert MapPoint.objects.count() == n
            raw = min(copies)
            ours = min(imports)
            print(f"COPY:      {n:>7} rows in {raw:8.2f} s = {n / raw:9.0f} rows/s")
            print(f"import:    {n:>7} rows in {ours:8.2f} s = {n / ours:9.0f} rows/s")
            print(breakdowns[imports.index(ours)].report(ours))
            if len(copies) > 1:
                print(
                    "           all runs: COPY "
                    + ", ".join(f"{t:.2f}" for t in copies)
                    + " s; import "
                    + ", ".join(f"{t:.2f}" for t in imports)
                    + " s"
                )

            breakdown = Breakdown()
            again = run_ours(path, breakdown)
            assert Household.objects.count() == n and House.objects.count() == n
            print(
                f"re-import: {n:>7} rows in {again:8.2f} s = {n / again:9.0f} rows/s "
                "(every household updated, no duplicates)"
            )
            print(breakdown.report(again))

            if args.orm_rows > 0:
                sample = min(n, args.orm_rows)
                empty_tables()
                measured = run_orm(path, sample)
                assert Household.objects.count() == sample
                orm = measured / sample * n
                print(
                    f"ORM:       {sample:>7} rows in {measured:8.2f} s = "
                    f"{sample / measured:9.0f} rows/s (full_clean(); save() per household and "
                    f"house), extrapolated to {n} rows: {orm:.1f} s = {orm / ours:.1f}x the import"
                )
            ratio = ours / raw
            print(
                f"import {n // 1000}k / COPY {n // 1000}k = {ratio:.1f}\u00d7 "
                f"(goal \u2264 {GOAL:g}\u00d7) {'met' if ratio <= GOAL else 'NOT met'}"
            )
            empty_tables()
        connections.close_all()
    finally:
        database.drop()


if __name__ == "__main__":
    main()
