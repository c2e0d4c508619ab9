#!/usr/bin/env python
"""Benchmark: the bulk household importer against a naive full_clean(); save() per row.

    DATABASE_URL=$(bash scripts/ensure_postgis.sh) .venv/bin/python bench/bench_import.py [--rows N]

Needs a PostGIS server (DATABASE_URL). It creates a throw-away database `anju_bench` on that
server (with the postgis extension), migrates it, and drops it at the end; the database named
in DATABASE_URL is never touched. It writes a CSV of N synthetic households (valid ID
numbers) to a temp dir and times, each from empty tables:

  ours      housing.importers.import_households on all N rows (read, validate, bulk write);
  re-import the same file again (every household updated, houses unchanged);
  baseline  per row: Household(...).full_clean(); save(); House(...).full_clean(); save(),
            in one transaction, with villages, key groups and choices resolved from dicts
            so that only the way of writing differs. On big N the baseline runs on the first
            --baseline-rows rows and is extrapolated per row (the output says so).

It prints rows/s for both and speedup = baseline_time / ours.
"""

import argparse
import csv
import datetime
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.throwaway_db import ThrowawayDatabase  # noqa: E402

BENCH_DB = "anju_bench"
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
    parser.add_argument("--rows", type=int, default=20000, help="Household rows (default 20000).")
    parser.add_argument(
        "--baseline-rows",
        type=int,
        default=20000,
        help="At most this many rows for the slow baseline; more are extrapolated per row.",
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
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE housing_familymember, housing_house, housing_household "
            "RESTART IDENTITY CASCADE"
        )


def run_ours(path: Path) -> float:
    from housing.importers import import_households

    started = time.perf_counter()
    import_households(path=path)
    return time.perf_counter() - started


def run_baseline(path: Path, limit: int) -> float:
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

        call_command("migrate", verbosity=0)
        villages = make_regions()
        with connection.cursor() as cursor:
            cursor.execute("SELECT split_part(version(), ' ', 2), postgis_lib_version()")
            pg_version, postgis_version = cursor.fetchone()

        n = args.rows
        sample = min(n, args.baseline_rows)
        with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp:
            path = Path(tmp) / "households.csv"
            write_csv(path, n, villages, args.seed)
            size_mb = path.stat().st_size / 1e6
            print(
                f"bench_import: {n} household rows ({size_mb:.1f} MB CSV), PostgreSQL "
                f"{pg_version}, PostGIS {postgis_version}, database {BENCH_DB}"
            )

            empty_tables()
            ours = run_ours(path)
            assert Household.objects.count() == n and House.objects.count() == n
            print(f"ours:      {n:>7} rows in {ours:8.2f} s = {n / ours:9.0f} rows/s")

            again = run_ours(path)
            assert Household.objects.count() == n and House.objects.count() == n
            print(
                f"re-import: {n:>7} rows in {again:8.2f} s = {n / again:9.0f} rows/s "
                "(every household updated, no duplicates)"
            )

            empty_tables()
            measured = run_baseline(path, sample)
            assert Household.objects.count() == sample
            per_row = measured / sample
            baseline = per_row * n
            print(
                f"baseline:  {sample:>7} rows in {measured:8.2f} s = "
                f"{sample / measured:9.0f} rows/s "
                "(full_clean(); save() per household and per house, one transaction)"
            )
            if sample < n:
                print(
                    f"           measured on {sample} of {n} rows; extrapolated per row to "
                    f"{n} rows: {baseline:.1f} s"
                )
            # Same work per row on both sides, so the ratio is of per-row times.
            print(f"speedup = baseline_time / ours = {baseline / ours:.1f}x")
            empty_tables()
        connections.close_all()
    finally:
        database.drop()


if __name__ == "__main__":
    main()
