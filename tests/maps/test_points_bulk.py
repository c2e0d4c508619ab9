"""The set-based refresh of a bulk load makes the same map tables as the per-household path.

A random registry (households with and without a location, on and off pyramid cell edges,
with no house, a current house or only old ones, with several cases whose creation times tie)
is put on the map three ways: one household at a time (the deltas single saves use), all at
once by ids (the bulk path above FULL_REBUILD_ABOVE: one upsert, cells rebuilt from
MapPoint), and a full refresh. The three give the same MapPoint and MapCell rows, and the
rows the registry says. The household importer's bulk load is compared the same way.
"""

import csv
import datetime
import math
import random
from io import StringIO

import pytest
from django.contrib.gis.geos import Point
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from housing import idnumbers
from housing.models import Household
from maps import points
from maps.models import MapCell, MapPoint
from renovation.models import CaseState, RenovationCase
from tests.factories import HouseFactory, HouseholdFactory, key_group, make_region, square
from tests.maps.test_points import (
    V1,
    V1B,
    V2,
    assert_cells_equal,
    assert_level_sums,
    cell_rows,
    expected_rows,
    point_rows,
    stored_rows,
)
from tests.renovation.factories import CaseFactory

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="PostgreSQL planner settings and statistics"
)


@pytest.fixture
def villages(regions):
    return {
        V1: regions["village1"],
        V1B: make_region(V1B, "石门村", boundary=square(107.95, 27.2, 0.05)),
        V2: regions["village2"],
    }


def random_location(rnd: random.Random, village: str):
    if rnd.random() < 0.2:
        return None
    west = {V1: 107.9, V1B: 107.95, V2: 108.0}[village]
    if rnd.random() < 0.2:  # on a zoom-12 cell edge: FLOOR and the shifts must agree
        step = 360 / 2**15
        lon = -180 + math.ceil((west + 0.01 + 180) / step) * step
    else:
        lon = west + rnd.random() * 0.05
    return Point(lon, 27.2 + rnd.random() * 0.05, srid=4326)


def random_registry(rnd: random.Random, villages: dict, n: int) -> list[int]:
    groups = [key_group("minimum_income"), key_group("registered_poor"), None]
    opened = timezone.now() - datetime.timedelta(days=30)
    ids = []
    for _i in range(n):
        code = rnd.choice(list(villages))
        household = HouseholdFactory(
            village=villages[code],
            location=random_location(rnd, code),
            key_group=rnd.choice(groups),
        )
        ids.append(household.pk)
        kind = rnd.random()
        if kind < 0.15:
            continue  # no house at all
        house = HouseFactory(household=household, safety_grade=rnd.choice("ABCD"))
        if kind < 0.3:
            house.is_current = False  # only an old house: not appraised on the map
            house.save()
            continue
        for _c in range(rnd.choice([0, 0, 1, 2, 3])):
            CaseFactory(
                house=house,
                state=rnd.choice(CaseState.values),
                funding_year=rnd.choice([2024, 2025, 2026]),
                # Several cases of a household opened at the same moment: the id decides.
                created_at=opened + datetime.timedelta(days=rnd.choice([0, 0, 1, 2])),
            )
    return ids


def emptied() -> None:
    MapPoint.objects.all().delete()
    MapCell.objects.all().delete()


def tables() -> tuple[list, dict]:
    return point_rows(), cell_rows()


@pytest.mark.parametrize("seed", [11, 12])
def test_the_bulk_refresh_equals_the_per_household_path_on_a_random_registry(
    villages, seed, monkeypatch
):
    ids = random_registry(random.Random(seed), villages, 60)
    assert RenovationCase.objects.exists()

    emptied()
    for household_id in random.Random(seed).sample(ids, len(ids)):
        points.refresh([household_id])  # the deltas, one household at a time
    one_by_one = tables()
    assert stored_rows() == expected_rows()
    assert_level_sums()

    emptied()
    monkeypatch.setattr(points, "FULL_REBUILD_ABOVE", 10)
    points.refresh(ids)  # the set-based bulk path, by ids
    by_ids = tables()

    emptied()
    points.refresh()  # everything
    full = tables()

    assert by_ids[0] == one_by_one[0] == full[0]
    assert_cells_equal(by_ids[1], one_by_one[1])
    assert_cells_equal(full[1], one_by_one[1])
    assert_level_sums()


def test_a_bulk_refresh_of_some_households_rebuilds_every_cell(villages, monkeypatch):
    """By ids, the bulk path upserts those households' rows and rebuilds all the cells: the
    other households' counts are kept."""
    ids = random_registry(random.Random(3), villages, 30)
    before = tables()
    changed = ids[::2]
    Household.objects.filter(pk__in=changed).update(village=villages[V2], key_group=None)

    monkeypatch.setattr(points, "FULL_REBUILD_ABOVE", 5)
    points.refresh(changed)
    bulk = tables()
    emptied()
    for household_id in ids:
        points.refresh([household_id])

    assert bulk[0] == point_rows()
    assert_cells_equal(bulk[1], cell_rows())
    assert bulk[0] != before[0]
    assert {row[1] for row in bulk[0] if row[0] in changed} == {V2}
    assert stored_rows() == expected_rows()


def test_the_delta_path_for_many_households_equals_the_per_household_path(villages, monkeypatch):
    """More households than CHUNK (a statement per chunk on SQLite, one on PostgreSQL)."""
    ids = random_registry(random.Random(8), villages, 25)
    monkeypatch.setattr(points, "CHUNK", 4)
    emptied()
    points.refresh(ids)
    deltas = tables()
    emptied()
    for household_id in ids:
        points.refresh([household_id])

    assert deltas[0] == point_rows()
    assert_cells_equal(deltas[1], cell_rows())
    assert not MapCell.objects.filter(n=0).exists()


HEADER = ["archive_no", "village_code", "head_name", "head_id_number"]
HEADER += ["longitude", "latitude", "key_group", "grade"]


def write_households(path, rnd: random.Random, n: int, start: int = 0) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(start, start + n):
            code = rnd.choice([V1, V1B, V2])
            location = random_location(rnd, code)
            writer.writerow(
                [
                    f"B{i:05d}",
                    code,
                    f"户主{i}",
                    idnumbers.make("520399", datetime.date(1950, 1, 1), i % 1000),
                    "" if location is None else repr(location.x),
                    "" if location is None else repr(location.y),
                    rnd.choice(["低保户", "minimum_income", ""]),
                    rnd.choice(["A", "B级", "C", "D", ""]),
                ]
            )


def test_a_bulk_import_leaves_the_map_as_the_per_household_path_would(
    villages, tmp_path, monkeypatch
):
    key_group("minimum_income")
    HouseFactory(
        household=HouseholdFactory(village=villages[V2], location=Point(108.01, 27.21, srid=4326))
    )
    monkeypatch.setattr(points, "FULL_REBUILD_ABOVE", 20)
    rnd = random.Random(21)
    path = tmp_path / "households.csv"
    write_households(path, rnd, 60)
    call_command("import_households", str(path), stdout=StringIO())
    write_households(path, rnd, 60, start=30)  # half of them again, moved and regraded
    call_command("import_households", str(path), stdout=StringIO())
    imported = tables()
    assert Household.objects.count() == 91

    emptied()
    for household_id in Household.objects.values_list("pk", flat=True):
        points.refresh([household_id])

    assert imported[0] == point_rows()
    assert_cells_equal(imported[1], cell_rows())
    assert stored_rows() == expected_rows()
    assert_level_sums()


@postgresql_only
def test_a_bulk_refresh_puts_the_planner_settings_back(villages, monkeypatch):
    """JIT off and more memory for the bulk statements only: the caller's transaction has
    its own settings back afterwards."""
    ids = random_registry(random.Random(4), villages, 12)
    monkeypatch.setattr(points, "FULL_REBUILD_ABOVE", 5)
    monkeypatch.setattr(points, "CHUNK", 5)
    settings = "SELECT current_setting('jit'), current_setting('work_mem')"
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '5MB'")
        cursor.execute("SET LOCAL jit = on")
        cursor.execute(settings)
        assert cursor.fetchone() == ("on", "5MB")
        points.refresh(ids)  # the bulk path
        points.refresh(ids[:8])  # deltas for more than CHUNK households
        cursor.execute(settings)
        assert cursor.fetchone() == ("on", "5MB")


@postgresql_only
def test_a_full_refresh_leaves_the_map_tables_analysed(villages):
    random_registry(random.Random(5), villages, 10)
    points.refresh()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relname IN (%s, %s) ORDER BY 1",
            [MapCell._meta.db_table, MapPoint._meta.db_table],
        )
        assert cursor.fetchall() == [
            (MapCell._meta.db_table, MapCell.objects.count()),
            (MapPoint._meta.db_table, 10),
        ]


@postgresql_only
def test_a_refresh_leaves_rows_the_registry_did_not_change_unwritten(villages, monkeypatch):
    """A tuple that is rewritten moves (its ctid changes); unchanged rows stay where they
    are, through the bulk path and the deltas alike, and a changed one is rewritten."""
    ids = random_registry(random.Random(6), villages, 12)

    def places() -> dict:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT household_id, ctid::text FROM {MapPoint._meta.db_table}")
            return dict(cursor.fetchall())

    before = places()
    monkeypatch.setattr(points, "FULL_REBUILD_ABOVE", 5)
    points.refresh(ids)
    points.refresh(ids[:3])
    assert places() == before

    moved_to = V1 if MapPoint.objects.get(pk=ids[0]).region_code != V1 else V2
    Household.objects.filter(pk=ids[0]).update(village=villages[moved_to])
    points.refresh(ids[:3])
    after = places()
    assert after[ids[0]] != before[ids[0]]
    assert {pk: place for pk, place in after.items() if pk != ids[0]} == {
        pk: place for pk, place in before.items() if pk != ids[0]
    }
    assert MapPoint.objects.get(pk=ids[0]).region_code == moved_to
