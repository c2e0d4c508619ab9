"""MapPoint and MapCell follow the registry: every write path, by deltas, equals a full rebuild.

The registry is written the ways production writes it (model saves, the inspection and case
services, the household importer, the demo seeder); after each write the two derived tables
are compared with what `points.refresh()` (the full rebuild) makes of the same registry, and
with a row-by-row expectation worked out here from the registry itself.
"""

import csv
import datetime
import math
import random
import uuid
from io import StringIO

import pytest
from django.contrib.gis.geos import Point
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from accounts.models import Role
from housing import idnumbers
from housing.models import House, Household, SafetyGrade
from housing.signals import households_changed
from inspections.services import inspection_submit
from maps import points
from maps.models import MapCell, MapPoint, MapVersion
from maps.points import ORIGIN, PYRAMID_MAX_ZOOM
from renovation.models import CaseState, RenovationCase
from renovation.services import case_act
from tests.factories import HouseFactory, HouseholdFactory, key_group, make_region, square
from tests.inspections.factories import SOUND
from tests.renovation.factories import CaseFactory, case_in_state

pytestmark = pytest.mark.django_db

V1, V1B, V2 = "520399100200", "520399100201", "520399101200"
LEVELS = [MapCell.REGION_LEVEL, *range(PYRAMID_MAX_ZOOM + 1)]


# ---------------------------------------------------------------------------------------
# What the tables hold, what a full rebuild makes of them, and what they should hold


def mercator(lon: float, lat: float) -> tuple[float, float]:
    return (
        lon * ORIGIN / 180.0,
        math.log(math.tan((90.0 + lat) * math.pi / 360.0)) * 6378137.0,
    )


def grid(lon: float, lat: float) -> tuple[int, int]:
    """The point's cell on the 2^15 grid (zoom 12's 32-pixel cells), worked out here."""
    x, y = mercator(lon, lat)
    cells = 2**15
    return (
        math.floor((x + ORIGIN) * cells / (2 * ORIGIN)),
        math.floor((ORIGIN - y) * cells / (2 * ORIGIN)),
    )


def point_rows() -> list[tuple]:
    return sorted(
        (
            p.household_id,
            p.region_code,
            None if p.point is None else (p.point.x, p.point.y),
            p.gx,
            p.gy,
            p.grade,
            p.case_state,
            p.key_group_id,
            p.funding_year,
        )
        for p in MapPoint.objects.all()
    )


def cell_rows() -> dict[tuple, tuple]:
    return {
        (
            c.level,
            c.cx,
            c.cy,
            c.region_code,
            c.grade,
            c.case_state,
            c.key_group_ref,
            c.funding_year,
        ): (
            c.n,
            c.located,
            c.sx,
            c.sy,
        )
        for c in MapCell.objects.all()
    }


def assert_cells_equal(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for key, (n, located, sx, sy) in want.items():
        assert got[key][:2] == (n, located), key
        # Sums of coordinates (~1e7 m) built by adding and subtracting: equal to rounding.
        assert got[key][2] == pytest.approx(sx, rel=1e-12, abs=1e-3), key
        assert got[key][3] == pytest.approx(sy, rel=1e-12, abs=1e-3), key


def assert_level_sums() -> None:
    """Every level counts every located household once; level -1 every household."""
    households = Household.objects.count()
    located = Household.objects.filter(location__isnull=False).count()
    assert MapPoint.objects.count() == households
    sums = {level: [0, 0] for level in LEVELS}
    for level, n, with_location in MapCell.objects.values_list("level", "n", "located"):
        sums[level][0] += n
        sums[level][1] += with_location
    assert sums[MapCell.REGION_LEVEL] == [households, located]
    for level in range(PYRAMID_MAX_ZOOM + 1):
        assert sums[level] == [located, located], level
    assert not MapCell.objects.filter(n__lte=0).exists()


def expected_rows() -> list[tuple]:
    """MapPoint as it should be, worked out from the registry with the ORM (no SQL of maps)."""
    rows = []
    for h in Household.objects.select_related("village"):
        current = House.objects.filter(household=h, is_current=True).first()
        latest = (
            RenovationCase.objects.filter(house__household=h).order_by("-created_at", "-id").first()
        )
        rows.append(
            (
                h.pk,
                h.village.code,
                h.location is not None,
                current.safety_grade if current else "",
                latest.state if latest else "",
                h.key_group_id,
                latest.funding_year if latest else None,
            )
        )
    return sorted(rows)


def stored_rows() -> list[tuple]:
    return sorted((r[0], r[1], r[2] is not None, r[5], r[6], r[7], r[8]) for r in point_rows())


def assert_same_as_full_rebuild() -> None:
    """The tables as the deltas left them equal a full rebuild, and the registry."""
    before_points, before_cells = point_rows(), cell_rows()
    assert stored_rows() == expected_rows()
    points.refresh()
    assert point_rows() == before_points
    assert_cells_equal(before_cells, cell_rows())
    assert_level_sums()


def cells_of(household_id: int) -> dict[int, tuple[int, int]]:
    """The household's (cx, cy) per pyramid level, from its stored grid cell."""
    row = MapPoint.objects.get(pk=household_id)
    return {
        level: (row.gx >> (PYRAMID_MAX_ZOOM - level), row.gy >> (PYRAMID_MAX_ZOOM - level))
        for level in range(PYRAMID_MAX_ZOOM + 1)
    }


@pytest.fixture
def villages(regions):
    return {
        V1: regions["village1"],
        V1B: make_region(V1B, "石门村", boundary=square(107.95, 27.2, 0.05)),
        V2: regions["village2"],
    }


# ---------------------------------------------------------------------------------------
# Single saves


def test_a_new_household_has_its_row_and_one_count_at_every_level(villages):
    household = HouseholdFactory(village=villages[V1], location=Point(107.905, 27.205, srid=4326))

    row = MapPoint.objects.get(pk=household.pk)
    assert row.region_code == V1
    assert (row.point.x, row.point.y) == pytest.approx(mercator(107.905, 27.205), abs=1e-3)
    assert (row.gx, row.gy) == grid(107.905, 27.205)
    assert (row.grade, row.case_state, row.funding_year) == ("", "", None)
    assert row.key_group == key_group("minimum_income")
    for level, (cx, cy) in cells_of(household.pk).items():
        cell = MapCell.objects.get(level=level)
        assert (cell.cx, cell.cy, cell.n, cell.located) == (cx, cy, 1, 1)
        assert (cell.sx, cell.sy) == pytest.approx((row.point.x, row.point.y))
    region = MapCell.objects.get(level=MapCell.REGION_LEVEL)
    assert (region.cx, region.cy, region.region_code, region.n, region.located) == (0, 0, V1, 1, 1)
    assert_same_as_full_rebuild()


def test_moving_a_household_moves_its_row_and_its_counts(villages):
    household = HouseholdFactory(village=villages[V1], location=Point(107.905, 27.205, srid=4326))
    HouseholdFactory(village=villages[V1], location=Point(107.905, 27.205, srid=4326))

    household.location = Point(108.02, 27.23, srid=4326)
    household.village = villages[V2]
    household.save()

    row = MapPoint.objects.get(pk=household.pk)
    assert (row.region_code, (row.gx, row.gy)) == (V2, grid(108.02, 27.23))
    assert MapCell.objects.filter(region_code=V2, level=12, n=1).count() == 1
    for level in LEVELS:  # the neighbour left behind is alone in the old cells
        assert MapCell.objects.get(level=level, region_code=V1).n == 1
    assert_same_as_full_rebuild()


def test_deleting_a_household_takes_it_out_of_every_cell(villages):
    stays = HouseholdFactory(village=villages[V1], location=Point(107.91, 27.21, srid=4326))
    goes = HouseholdFactory(village=villages[V1], location=Point(107.91, 27.21, srid=4326))
    alone = HouseholdFactory(village=villages[V2], location=Point(108.01, 27.21, srid=4326))
    for level in LEVELS:
        assert MapCell.objects.get(level=level, region_code=V1).n == 2

    goes.delete()
    Household.objects.filter(pk=alone.pk).delete()  # a queryset delete: pre_delete per row

    assert set(MapPoint.objects.values_list("pk", flat=True)) == {stays.pk}
    assert not MapCell.objects.filter(region_code=V2).exists()
    for level in LEVELS:
        cell = MapCell.objects.get(level=level)
        assert (cell.region_code, cell.n, cell.located) == (V1, 1, 1)
        assert cell.sx == pytest.approx(MapPoint.objects.get().point.x)
    assert_same_as_full_rebuild()


def test_deleting_a_house_leaves_its_household_not_appraised(villages):
    house = HouseFactory(household=HouseholdFactory(village=villages[V1]), safety_grade="C")

    house.delete()

    assert MapPoint.objects.get(pk=house.household_id).grade == ""
    assert set(MapCell.objects.values_list("grade", flat=True)) == {""}
    assert_same_as_full_rebuild()


@pytest.mark.django_db(transaction=True)
def test_deleting_a_household_with_its_house_commits_and_takes_it_off_the_map(regions):
    """Committed for real (transaction=True): the foreign key is checked at commit."""
    stays = HouseFactory(
        household=HouseholdFactory(
            village=regions["village1"], location=Point(107.91, 27.21, srid=4326)
        )
    ).household
    goes = HouseFactory(
        household=HouseholdFactory(
            village=regions["village1"], location=Point(107.91, 27.21, srid=4326)
        ),
        safety_grade="D",
    ).household

    goes.delete()  # autocommit: the cascade (house, map row) and the checks commit here

    assert list(Household.objects.values_list("pk", flat=True)) == [stays.pk]
    assert list(MapPoint.objects.values_list("pk", flat=True)) == [stays.pk]
    for level in LEVELS:
        assert MapCell.objects.get(level=level).n == 1
    assert_same_as_full_rebuild()


def test_a_household_without_a_location_counts_only_in_the_region_figures(villages):
    household = HouseFactory(
        household=HouseholdFactory(village=villages[V1], location=None), safety_grade="D"
    ).household

    row = MapPoint.objects.get(pk=household.pk)
    assert (row.point, row.gx, row.gy, row.grade) == (None, None, None, "D")
    assert list(MapCell.objects.values_list("level", "n", "located", "sx", "sy")) == [
        (MapCell.REGION_LEVEL, 1, 0, 0.0, 0.0)
    ]
    assert_same_as_full_rebuild()

    household.location = Point(107.92, 27.22, srid=4326)
    household.save()
    assert MapCell.objects.count() == len(LEVELS)
    assert_same_as_full_rebuild()

    household.location = None
    household.save()
    assert MapCell.objects.get().level == MapCell.REGION_LEVEL
    assert_same_as_full_rebuild()


def test_a_grade_from_an_appraisal_moves_the_household_between_grade_counts(
    villages, make_user, regions
):
    inspector = make_user(Role.INSPECTOR, [regions["township1"]])
    house = HouseFactory(
        household=HouseholdFactory(village=villages[V1]), safety_grade=SafetyGrade.NOT_APPRAISED
    )
    assert MapPoint.objects.get(pk=house.household_id).grade == ""
    started = timezone.now() - datetime.timedelta(hours=2)

    inspection_submit(
        user=inspector,
        client_uuid=uuid.uuid4(),
        household=house.household,
        kind="appraisal",
        started_at=started,
        ended_at=started + datetime.timedelta(hours=1),
        location=(107.9051, 27.2052),
        appraisal={**SOUND, "roof_structure": "dangerous"},
    )

    assert House.objects.get(pk=house.pk).safety_grade == "C"
    assert MapPoint.objects.get(pk=house.household_id).grade == "C"
    assert set(MapCell.objects.values_list("grade", flat=True)) == {"C"}
    assert_same_as_full_rebuild()

    house.safety_grade = SafetyGrade.A  # an edit in the registry (the admin saves the house)
    house.save()
    assert set(MapCell.objects.values_list("grade", flat=True)) == {"A"}
    assert_same_as_full_rebuild()


def test_a_new_current_house_brings_its_grade(villages):
    old = HouseFactory(household=HouseholdFactory(village=villages[V1]), safety_grade="D")
    old.is_current = False
    old.save()
    assert MapPoint.objects.get(pk=old.household_id).grade == ""

    HouseFactory(household=old.household, safety_grade="A")

    assert MapPoint.objects.get(pk=old.household_id).grade == "A"
    assert_same_as_full_rebuild()


def test_opening_a_case_and_each_step_show_on_the_map(villages):
    case = case_in_state(CaseState.APPLIED, photos=False)
    household_id = case.house.household_id

    row = MapPoint.objects.get(pk=household_id)
    assert (row.grade, row.case_state, row.funding_year) == ("D", "applied", case.funding_year)
    assert MapCell.objects.filter(case_state="applied", funding_year=case.funding_year).count() == (
        len(LEVELS)
    )
    assert_same_as_full_rebuild()

    case_act(
        user=case.team["inspector"],
        case_id=case.pk,
        action="village_review",
        opinion="Seen on site.",
        confirm=True,
    )

    assert MapPoint.objects.get(pk=household_id).case_state == "village_reviewed"
    assert set(MapCell.objects.values_list("case_state", flat=True)) == {"village_reviewed"}
    assert_same_as_full_rebuild()

    case_act(
        user=case.team["township"],
        case_id=case.pk,
        action="withdraw",
        reason="Moved away.",
        opinion="Withdrawn.",
        confirm=True,
    )

    assert MapPoint.objects.get(pk=household_id).case_state == "withdrawn"
    assert_same_as_full_rebuild()


def test_the_latest_case_is_the_one_counted(villages):
    house = HouseFactory(household=HouseholdFactory(village=villages[V2]), safety_grade="D")
    first = CaseFactory(house=house, state=CaseState.REJECTED, funding_year=2024)
    second = CaseFactory(house=house, state=CaseState.APPLIED, funding_year=2026)
    assert second.created_at >= first.created_at

    assert MapPoint.objects.values_list("case_state", "funding_year").get() == ("applied", 2026)
    second.delete()
    assert MapPoint.objects.values_list("case_state", "funding_year").get() == ("rejected", 2024)
    assert_same_as_full_rebuild()


def test_a_key_group_change_moves_the_household_between_key_group_counts(villages):
    household = HouseholdFactory(village=villages[V1])
    poor = key_group("registered_poor")

    household.key_group = poor
    household.save()

    assert MapPoint.objects.get(pk=household.pk).key_group_id == poor.pk
    assert set(MapCell.objects.values_list("key_group_ref", flat=True)) == {poor.pk}
    household.key_group = None
    household.save()
    assert set(MapCell.objects.values_list("key_group_ref", flat=True)) == {0}
    assert_same_as_full_rebuild()


def test_a_rolled_back_write_leaves_the_map_and_its_version_as_they_were(villages):
    household = HouseholdFactory(village=villages[V1], location=Point(107.905, 27.205, srid=4326))
    before = point_rows(), cell_rows(), points.version()

    with pytest.raises(RuntimeError), transaction.atomic():
        household.location = Point(108.03, 27.24, srid=4326)
        household.village = villages[V2]
        household.save()
        assert MapPoint.objects.get(pk=household.pk).region_code == V2
        raise RuntimeError("the caller fails after the save")

    assert (point_rows(), cell_rows(), points.version()) == before


def test_every_refresh_moves_the_version_once_and_an_empty_one_not_at_all(villages):
    household = HouseholdFactory(village=villages[V1])
    start = points.version()

    points.refresh([household.pk, household.pk])
    assert points.version() == start + 1
    points.refresh([])
    assert points.version() == start + 1
    points.forget([])
    assert points.version() == start + 1
    points.refresh()
    assert points.version() == start + 2
    assert MapVersion.objects.count() == 1


def test_chunked_deltas_and_the_rebuild_above_the_threshold_agree(villages, monkeypatch):
    """Production chunks 500 ids and rebuilds above 20,000: the same paths, made small."""
    rnd = random.Random(5)
    made = [
        HouseholdFactory(
            village=villages[rnd.choice([V1, V1B, V2])],
            location=None
            if i % 5 == 0
            else Point(107.9 + rnd.random() * 0.15, 27.2 + rnd.random() * 0.05, srid=4326),
        )
        for i in range(12)
    ]
    monkeypatch.setattr(points, "CHUNK", 3)
    Household.objects.filter(pk__in=[h.pk for h in made[:7]]).update(
        key_group=key_group("registered_poor"), village=villages[V2]
    )
    households_changed.send(sender=Household, ids=[h.pk for h in made[:7]])
    assert_same_as_full_rebuild()

    monkeypatch.setattr(points, "FULL_REBUILD_ABOVE", 4)
    Household.objects.filter(pk__in=[h.pk for h in made[3:]]).update(key_group=None)
    households_changed.send(sender=Household, ids=[h.pk for h in made[3:]])
    assert_same_as_full_rebuild()


# ---------------------------------------------------------------------------------------
# Random sequences of edits: deltas equal the full rebuild whatever the order


def random_location(rnd: random.Random, village: str):
    if rnd.random() < 0.2:
        return None
    west = {V1: 107.9, V1B: 107.95, V2: 108.0}[village]
    # Now and then on a pyramid cell edge (a multiple of 360 / 2^15 degrees of longitude).
    if rnd.random() < 0.2:
        step = 360 / 2**15
        lon = -180 + math.ceil((west + 0.01 + 180) / step) * step
    else:
        lon = west + rnd.random() * 0.05
    return Point(lon, 27.2 + rnd.random() * 0.05, srid=4326)


def random_edit(rnd: random.Random, villages: dict, groups: list) -> str:
    """One registry write, chosen at random among those production makes."""
    households = list(Household.objects.order_by("pk"))
    without_cases = [
        h for h in households if not House.objects.filter(household=h, inspections__isnull=False)
    ]
    houses = list(House.objects.filter(is_current=True).order_by("pk"))
    cases = list(RenovationCase.objects.order_by("pk"))
    edit = rnd.choice(
        [
            "add",
            "add",
            "move",
            "village",
            "key_group",
            "delete",
            "grade",
            "new_house",
            "delete_house",
            "open_case",
            "case_state",
            "delete_case",
            "bulk",
        ]
    )
    if edit == "add" or not households:
        code = rnd.choice(list(villages))
        household = HouseholdFactory(
            village=villages[code],
            location=random_location(rnd, code),
            key_group=rnd.choice(groups),
        )
        if rnd.random() < 0.8:
            HouseFactory(household=household, safety_grade=rnd.choice(["A", "B", "C", "D", ""]))
        return "add"
    if edit == "move":
        household = rnd.choice(households)
        household.location = random_location(rnd, household.village.code)
        household.save()
    elif edit == "village":
        household = rnd.choice(households)
        household.village = villages[rnd.choice(list(villages))]
        household.save()
    elif edit == "key_group":
        household = rnd.choice(households)
        household.key_group = rnd.choice(groups)
        household.save()
    elif edit == "delete" and without_cases:
        household = rnd.choice(without_cases)
        household.delete()
    elif edit == "grade" and houses:
        house = rnd.choice(houses)
        house.safety_grade = rnd.choice(["A", "B", "C", "D", ""])
        house.save()
    elif edit == "new_house" and houses:
        house = rnd.choice(houses)
        house.is_current = False
        house.save()
        HouseFactory(household=house.household, safety_grade=rnd.choice("ABCD"))
    elif edit == "delete_house":
        free = [h for h in houses if not h.inspections.exists()]
        if free:
            rnd.choice(free).delete()
    elif edit == "open_case" and houses:
        CaseFactory(
            house=rnd.choice(houses),
            state=rnd.choice(CaseState.values),
            funding_year=rnd.choice([2024, 2025, 2026]),
        )
    elif edit == "case_state" and cases:
        case = rnd.choice(cases)
        case.state = rnd.choice(CaseState.values)
        case.funding_year = rnd.choice([2024, 2025, 2026])
        case.save()
    elif edit == "delete_case" and cases:
        rnd.choice(cases).delete()
    elif edit == "bulk":
        # The bulk paths' contract: write without save(), then say which households changed.
        chosen = rnd.sample(households, k=min(len(households), rnd.randint(1, 5)))
        ids = [h.pk for h in chosen]
        Household.objects.filter(pk__in=ids).update(key_group=rnd.choice(groups))
        House.objects.filter(household_id__in=ids, is_current=True).update(
            safety_grade=rnd.choice("ABCD")
        )
        households_changed.send(sender=Household, ids=ids)
    return edit


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_edits_by_deltas_equal_a_full_rebuild(villages, seed):
    rnd = random.Random(seed)
    groups = [key_group("minimum_income"), key_group("registered_poor"), None]
    done = []
    for step in range(45):
        done.append(random_edit(rnd, villages, groups))
        if step % 15 == 14:
            assert_same_as_full_rebuild()
    assert len(set(done)) >= 8  # the sequence did exercise most kinds of edit
    assert Household.objects.count() > 0


# ---------------------------------------------------------------------------------------
# The bulk paths


HEADER = [
    "archive_no",
    "village_code",
    "head_name",
    "head_id_number",
    "longitude",
    "latitude",
    "key_group",
    "structure_type",
    "grade",
]


def import_rows(path, rows) -> str:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    out = StringIO()
    call_command("import_households", str(path), stdout=out)
    return out.getvalue()


def person(n: int) -> str:
    return idnumbers.make("520399", datetime.date(1960, 1, 1) + datetime.timedelta(days=n), n)


def test_import_households_leaves_the_map_as_a_full_rebuild_would(villages, tmp_path):
    key_group("minimum_income")
    kept = HouseholdFactory(village=villages[V2], location=Point(108.01, 27.21, srid=4326))
    rows = [
        ["A001", V1, "张三", person(1), "107.91", "27.21", "低保户", "土木", "C"],
        ["A002", V1B, "李四", person(2), "", "", "", "brick_wood", "B级"],
        ["A003", V2, "王五", person(3), "108.01", "27.21", "minimum_income", "土木", ""],
    ]

    import_rows(tmp_path / "first.csv", rows)

    stored = {
        h.archive_no: MapPoint.objects.get(pk=h.pk) for h in Household.objects.exclude(pk=kept.pk)
    }
    assert {a: (p.region_code, p.grade, p.point is None) for a, p in stored.items()} == {
        "A001": (V1, "C", False),
        "A002": (V1B, "B", True),
        "A003": (V2, "", False),
    }
    assert_same_as_full_rebuild()

    # Again, moved, regraded, one of them to another village: updates in place.
    rows[0][4:6] = ["108.04", "27.24"]
    rows[0][1] = V2
    rows[1][4:6] = ["107.96", "27.22"]
    rows[2][8] = "D"
    import_rows(tmp_path / "second.csv", rows)

    a001 = MapPoint.objects.get(household__archive_no="A001")
    assert (a001.region_code, (a001.gx, a001.gy)) == (V2, grid(108.04, 27.24))
    assert MapPoint.objects.get(household__archive_no="A002").point is not None
    assert MapPoint.objects.get(household__archive_no="A003").grade == "D"
    assert MapPoint.objects.count() == 4
    assert_same_as_full_rebuild()


def test_seed_demo_leaves_the_map_as_a_full_rebuild_would(db, settings):
    settings.ANJU_DEMO_PASSWORD = "demo-pass-for-tests-26"
    call_command("seed_demo", households=200, seed=3, no_photos=True, stdout=StringIO())

    assert Household.objects.count() == 200
    assert MapPoint.objects.count() == 200
    assert MapCell.objects.filter(level=MapCell.REGION_LEVEL).count() > 1
    assert_same_as_full_rebuild()


def test_a_map_row_left_by_a_raw_deletion_is_removed_by_the_next_full_refresh(villages):
    """MapPoint's reference to its household is not a database foreign key (maps.models):
    a household deleted behind the ORM's back leaves its row, and the next full refresh
    takes it out of the points and the cells."""
    from django.db import connection

    kept = HouseholdFactory(village=villages[V1], location=Point(107.91, 27.21, srid=4326))
    gone = HouseholdFactory(village=villages[V1], location=Point(107.92, 27.22, srid=4326))
    assert MapPoint.objects.filter(pk=gone.pk).exists()
    with connection.cursor() as cursor:
        for table in ("housing_familymember", "housing_house"):
            cursor.execute(f"DELETE FROM {table} WHERE household_id = %s", [gone.pk])
        cursor.execute("DELETE FROM housing_household WHERE id = %s", [gone.pk])
    assert MapPoint.objects.filter(pk=gone.pk).exists()  # nothing stopped it
    points.refresh()
    assert list(MapPoint.objects.values_list("pk", flat=True)) == [kept.pk]
    assert_same_as_full_rebuild()
    assert MapCell.objects.get(level=PYRAMID_MAX_ZOOM, region_code=V1).n == 1
