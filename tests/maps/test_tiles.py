"""The officials' map reads: GeoJSON tiles, popups, region figures and the overview page.

Households go in through the models' save() (so MapPoint is what maps.signals keeps in step),
spread over two townships: township 1 with villages V1 and V1B, township 2 with village V2,
each village a 0.05° square near lon 107.9–108.05, lat 27.2–27.25. Some sit exactly on tile
and cell edges (longitudes that are exact multiples of a tile's width, latitudes of a tile
row's edge), two share one spot, and for the figures two have no location. Expectations
are worked out here from that list, never read back from MapPoint. Hundreds of tiles are
read by calling maps.tiles.tile() directly; what the view adds (form, scope, ETag, status
codes) is read through the test client.
"""

import json
import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Role
from housing.coords import wgs84_to_gcj02
from housing.models import House
from maps import points
from maps.filters import MapFilters, TileFilterForm
from maps.legend import GRADES, STAGE_OF_STATE, STAGES
from maps.selectors import region_figures
from maps.tiles import tile, tile_json
from renovation.models import CaseState
from tests.factories import (
    HouseFactory,
    HouseholdFactory,
    UserFactory,
    key_group,
    make_region,
    square,
)
from tests.housing.test_coords import REFERENCE
from tests.inspections.factories import AppraisalFactory
from tests.renovation.factories import CaseFactory

pytestmark = pytest.mark.django_db

COUNTY, T1, T2 = "520399", "520399100", "520399101"
V1, V1B, V2 = "520399100200", "520399100201", "520399101200"
BOXES = {  # west, south, east, north
    V1: (107.9, 27.2, 107.95, 27.25),
    V1B: (107.95, 27.2, 108.0, 27.25),
    V2: (108.0, 27.2, 108.05, 27.25),
}
AREA = (107.9, 27.2, 108.05, 27.25)
GRADE_KEYS = [c.key for c in GRADES]
STAGE_KEYS = [c.key for c in STAGES]


@dataclass(frozen=True)
class Home:
    """One household as the test made it."""

    pk: int
    village: str
    lon: float | None
    lat: float | None
    grade: str  # "" = not appraised or no house
    state: str  # latest case state, "" = none
    year: int | None
    group: str  # key group code, "" = none
    head_name: str
    archive_no: str

    @property
    def located(self) -> bool:
        return self.lon is not None

    @property
    def township(self) -> str:
        return self.village[:9]


# ---------------------------------------------------------------------------------------
# Tile arithmetic, worked out here independently of maps.tiles


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = math.floor((lon + 180.0) / 360.0 * n)
    y = math.floor((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def row_edge_lat(y: int, z: int) -> float:
    """The latitude of the north edge of tile row y at zoom z."""
    return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / 2**z))))


def tiles_over(box, z: int, margin: int = 1) -> list[tuple[int, int]]:
    west, south, east, north = box
    x0, y1 = tile_of(west, south, z)
    x1, y0 = tile_of(east, north, z)
    n = 2**z
    return [
        (x, y)
        for x in range(max(x0 - margin, 0), min(x1 + margin, n - 1) + 1)
        for y in range(max(y0 - margin, 0), min(y1 + margin, n - 1) + 1)
    ]


def tiles_near(homes, z: int, shift: bool = False) -> list[tuple[int, int]]:
    """Every tile within one tile of a household: a superset of the tiles holding any."""
    near = set()
    for h in homes:
        if h.located:
            lon, lat = wgs84_to_gcj02(h.lon, h.lat) if shift else (h.lon, h.lat)
            x, y = tile_of(lon, lat, z)
            near.update((x + dx, y + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1))
    return sorted(near)


def world(z: int) -> list[tuple[int, int]]:
    return [(x, y) for x in range(2**z) for y in range(2**z)]


def features_of(user, z: int, tiles, filters: MapFilters | None = None) -> list[dict]:
    filters = filters or MapFilters()
    found = []
    for x, y in tiles:
        # What the view sends: close up on PostGIS, the features the database wrote.
        data = json.loads(tile_json(user=user, z=z, x=x, y=y, filters=filters))
        assert data["type"] == "FeatureCollection"
        found.extend(data["features"])
    return found


def summary(features: list[dict]) -> dict:
    """What a set of features says: total, single ids (with repeats), grade and stage counts."""
    grades, stages, ids = Counter(), Counter(), []
    for f in features:
        props = f["properties"]
        if "id" in props:
            assert props["n"] == 1
            ids.append(props["id"])
            grades[props["g"]] += 1
            stages[props["s"]] += 1
        else:
            assert props["n"] > 1
            assert sum(props["g"]) == props["n"] == sum(props["s"])
            grades.update(dict(zip(GRADE_KEYS, props["g"], strict=True)))
            stages.update(dict(zip(STAGE_KEYS, props["s"], strict=True)))
    return {
        "total": sum(f["properties"]["n"] for f in features),
        "ids": ids,
        "grades": +grades,
        "stages": +stages,
    }


def expected(homes) -> dict:
    located = [h for h in homes if h.located]
    return {
        "total": len(located),
        "grades": Counter(h.grade or "none" for h in located),
        "stages": Counter(STAGE_OF_STATE[h.state] for h in located),
    }


def assert_tiles_show_exactly(user, z: int, homes, tiles) -> dict:
    """The tiles count each of these located households once and nothing else."""
    got = summary(features_of(user, z, tiles))
    want = expected(homes)
    ids = got["ids"]
    assert len(ids) == len(set(ids)), f"zoom {z}: a household drawn twice"
    assert set(ids) <= {h.pk for h in homes if h.located}, f"zoom {z}: a stranger's household"
    assert got["total"] == want["total"], f"zoom {z}"
    assert got["grades"] == want["grades"], f"zoom {z}"
    assert got["stages"] == want["stages"], f"zoom {z}"
    if z >= 15:
        assert sorted(ids) == sorted(h.pk for h in homes if h.located), f"zoom {z}"
    return got


# ---------------------------------------------------------------------------------------
# The households


def edge_positions(rnd: random.Random) -> list[tuple[float, float]]:
    """Points on tile edges of zooms 10–17 (so on cell edges of zooms 7–14 as well):
    for each zoom a column edge, a row edge and a corner where both meet."""
    spots = []
    for z in range(10, 18):
        n = 2**z
        columns = [
            -180.0 + k * 360.0 / n
            for k in range(
                math.floor((AREA[0] + 180) / 360 * n), math.ceil((AREA[2] + 180) / 360 * n) + 1
            )
            if AREA[0] + 0.003 < -180.0 + k * 360.0 / n < AREA[2] - 0.003
        ]
        _x, y_north = tile_of(0, AREA[3], z)
        _x, y_south = tile_of(0, AREA[1], z)
        rows = {
            y: row_edge_lat(y, z)
            for y in range(y_north, y_south + 2)
            if AREA[1] + 0.003 < row_edge_lat(y, z) < AREA[3] - 0.003
        }
        # Prefer an edge that is new at this zoom (an odd multiple of the tile width).
        column = next((c for c in columns if round((c + 180) / 360 * n) % 2), None)
        column = column if column is not None else (columns[len(columns) // 2] if columns else None)
        row = next((lat for y, lat in rows.items() if y % 2), None)
        row = row if row is not None else next(iter(rows.values()), None)
        inner_lon = AREA[0] + 0.004 + rnd.random() * (AREA[2] - AREA[0] - 0.008)
        inner_lat = AREA[1] + 0.004 + rnd.random() * (AREA[3] - AREA[1] - 0.008)
        if column is not None:
            spots.append((column, inner_lat))
        if row is not None:
            spots.append((inner_lon, row))
        if column is not None and row is not None:
            spots.append((column, row))
    return spots


def village_at(lon: float) -> str:
    return next(code for code, box in BOXES.items() if box[0] <= lon < box[2])


class Builder:
    def __init__(self, villages):
        self.villages = villages
        self.homes: list[Home] = []
        self.staff = None  # one user opens every case: cheaper than a user per case

    def add(self, code, lon, lat, *, grade="C", state="", year=None, group="minimum_income"):
        """A household; grade None: no house at all; a case in `state` on its house."""
        household = HouseholdFactory(
            village=self.villages[code],
            location=None if lon is None else Point(lon, lat, srid=4326),
            key_group=key_group(group) if group else None,
        )
        if grade is not None:
            house = HouseFactory(household=household, safety_grade=grade)
            if state:
                self.staff = self.staff or UserFactory(username="case-staff")
                CaseFactory(
                    house=house,
                    state=state,
                    funding_year=year,
                    created_by=self.staff,
                    entry_appraisal=AppraisalFactory(
                        inspection__house=house, inspection__inspector=self.staff, grade="D"
                    ),
                )
        home = Home(
            household.pk,
            code,
            lon,
            lat,
            grade or "",
            state,
            year if state else None,
            group,
            household.head_name,
            household.archive_no,
        )
        self.homes.append(home)
        return home


def villages_for(regions) -> dict:
    return {
        V1: regions["village1"],
        V1B: make_region(V1B, "石门村", boundary=square(107.95, 27.2, 0.05)),
        V2: regions["village2"],
    }


# Per village, six households whose grade, latest case and key group go round these lists
# (each village starting further along), so every filter value has households in every
# village, at random spots.
MIX_GRADES = ["A", "B", "C", "D", "", None]  # None: no house at all
MIX_CASES = [
    ("", None),
    (CaseState.APPLIED, 2026),
    ("", None),
    (CaseState.WORKS_STARTED, 2025),
    (CaseState.PAID, 2025),
    (CaseState.REJECTED, 2026),
]
MIX_GROUPS = ["minimum_income", "registered_poor", "", "minimum_income"]


@pytest.fixture
def homes(regions) -> list[Home]:
    """Six households per village with a mix of grades, cases and key groups, and two
    households sharing one spot. All located (see `unlocated`)."""
    build = Builder(villages_for(regions))
    rnd = random.Random(20240501)
    for v, (code, (west, south, east, north)) in enumerate(BOXES.items()):
        for i in range(6):
            grade = MIX_GRADES[(i + v) % len(MIX_GRADES)]
            state, year = (
                MIX_CASES[(i + 2 * v) % len(MIX_CASES)] if grade is not None else ("", None)
            )
            build.add(
                code,
                west + 0.003 + rnd.random() * (east - west - 0.006),
                south + 0.003 + rnd.random() * (north - south - 0.006),
                grade=grade,
                state=str(state),
                year=year,
                group=MIX_GROUPS[(i + v) % len(MIX_GROUPS)],
            )
    build.add(V2, 108.0311, 27.2311, grade="D", state=CaseState.APPLIED, year=2026)
    build.add(V2, 108.0311, 27.2311, grade="", group="registered_poor")
    return build.homes


@pytest.fixture
def unlocated(homes, regions) -> list[Home]:
    """`homes` and two households without a location: in the figures, on no tile."""
    build = Builder(villages_for(regions))
    build.add(V1, None, None, grade="D")
    build.add(V2, None, None, grade=None, group="registered_poor")
    return homes + build.homes


@pytest.fixture
def edge_homes(regions) -> list[Home]:
    """Households exactly on tile and cell edges, each in a key group of its own (so one
    household can be followed through every tile by filtering on it), and a few inside."""
    build = Builder(villages_for(regions))
    rnd = random.Random(7)
    for i, (lon, lat) in enumerate(edge_positions(rnd)):
        build.add(village_at(lon), lon, lat, grade="ABCD"[i % 4], group=f"edge-{i}")
    build.add(V1, 107.91, 27.21, grade="A", group="edge-inner-1")
    build.add(V1, 107.91, 27.21, grade="B", group="edge-inner-2")
    return build.homes


# ---------------------------------------------------------------------------------------
# Each household counted exactly once at every zoom


def assert_each_counted_once(user, zooms, homes) -> None:
    """At each zoom: all tiles over the area count every household once (ids once each,
    every id at point zooms); and each household followed alone (its own key group as the
    filter) through the up to four tiles whose edges it lies on counts once, in one tile."""
    for z in zooms:
        assert_tiles_show_exactly(user, z, homes, tiles_over(AREA, z))
        for home in homes:
            touching = {
                tile_of(home.lon + dx, home.lat + dy, z)
                for dx in (-1e-7, 1e-7)
                for dy in (-1e-7, 1e-7)
            }
            found = features_of(user, z, touching, MapFilters(key_group=home.group))
            assert sum(f["properties"]["n"] for f in found) == 1, (z, home)
            assert [f["properties"].get("id", home.pk) for f in found] == [home.pk], (z, home)


def test_on_pyramid_zooms_each_household_is_counted_once(edge_homes, make_user):
    assert len(edge_homes) > 20
    assert_each_counted_once(make_user(Role.ADMINISTRATOR), range(8, 13), edge_homes)


def test_on_zooms_13_and_14_each_household_is_counted_once(edge_homes, make_user):
    assert_each_counted_once(make_user(Role.ADMINISTRATOR), [13, 14], edge_homes)


def test_on_point_zooms_each_household_is_drawn_once(edge_homes, make_user):
    assert_each_counted_once(make_user(Role.ADMINISTRATOR), [15, 16, 17], edge_homes)


def test_over_a_gcj02_base_map_each_household_is_still_drawn_in_one_tile(
    edge_homes, make_user, settings
):
    """Close up, houses go to tiles by their shifted position: still each in one tile."""
    settings.MAP_BASEMAP_CRS = "gcj02"
    admin = make_user(Role.ADMINISTRATOR)
    for z in (15, 16, 17):
        assert_tiles_show_exactly(admin, z, edge_homes, tiles_near(edge_homes, z, shift=True))


# ---------------------------------------------------------------------------------------
# Scope


def in_scope(homes, *codes):
    return [h for h in homes if any(h.village.startswith(c) for c in codes)]


def scope_tiles(homes, z: int) -> list[tuple[int, int]]:
    """Zoom 0–2: the whole world. Up to 12: every tile over the area. Closer: every tile
    within one tile of any household, in scope or not (the only tiles that can hold one)."""
    if z <= 2:
        return world(z)
    if z <= 12:
        return tiles_over(AREA, z)
    return tiles_near(homes, z)


USERS = {
    "township": lambda regions, make_user: make_user(
        Role.TOWNSHIP_OFFICIAL, [regions["township1"]]
    ),
    "village": lambda regions, make_user: make_user(Role.INSPECTOR, [regions["village1"]]),
    "admin": lambda regions, make_user: make_user(Role.ADMINISTRATOR),
    "county": lambda regions, make_user: make_user(Role.COUNTY_OFFICIAL, [regions["county"]]),
}


@pytest.mark.parametrize(
    ("who", "codes"),
    [
        pytest.param("township", (T1,), id="township-official"),
        pytest.param("village", (V1,), id="inspector-of-one-village"),
        pytest.param("admin", (COUNTY,), id="administrator"),
    ],
)
def test_tiles_hold_only_and_exactly_the_users_households_at_every_zoom(
    homes, regions, make_user, who, codes
):
    """No id and no count from outside the user's regions, and every count inside them:
    pyramid cells (0–12), cells counted on the fly (13–14), single houses (15–18)."""
    user = USERS[who](regions, make_user)
    mine = in_scope(homes, *codes)
    assert 0 < len(mine) <= len(homes)
    for z in range(19):
        assert_tiles_show_exactly(user, z, mine, scope_tiles(homes, z))


def test_a_user_without_regions_gets_empty_tiles(homes, make_user, client):
    nobody = make_user(Role.COUNTY_OFFICIAL, [])
    for z in (0, 1, 2, 8, 10, 13, 16):
        assert features_of(nobody, z, scope_tiles(homes, z)) == [], z
    client.force_login(nobody)
    response = client.get(reverse("maps:tile", args=[0, 0, 0]))
    assert response.status_code == 200
    assert response.json() == {"type": "FeatureCollection", "features": []}


def test_filters_and_scope_together_count_exactly(homes, regions, make_user):
    official = make_user(Role.TOWNSHIP_OFFICIAL, [regions["township1"]])
    filters = MapFilters(grades=("C", "D", "none"), states=("none", CaseState.APPLIED))
    mine = [
        h
        for h in in_scope(homes, T1)
        if (h.grade or "none") in filters.grades and (h.state or "none") in filters.states
    ]
    assert mine
    for z in (0, 9, 12, 13, 14, 15, 17):
        got = summary(features_of(official, z, scope_tiles(homes, z), filters))
        assert got["total"] == len(mine), z
        assert got["grades"] == expected(mine)["grades"], z
        assert set(got["ids"]) <= {h.pk for h in mine}, z


def test_households_without_a_location_are_on_no_tile(unlocated, make_user, settings):
    admin = make_user(Role.ADMINISTRATOR)
    located = [h for h in unlocated if h.located]
    assert len(located) < len(unlocated)
    for crs in ("wgs84", "gcj02"):
        settings.MAP_BASEMAP_CRS = crs
        for z in (0, 10, 13, 15, 17):
            # Close up over a GCJ-02 map, houses are in the tiles of their shifted position.
            tiles = (
                tiles_near(unlocated, z, shift=True)
                if crs == "gcj02" and z >= 15
                else scope_tiles(unlocated, z)
            )
            assert_tiles_show_exactly(admin, z, unlocated, tiles)


def test_popup_shows_an_in_scope_household_and_404s_outside_the_scope(
    homes, regions, make_user, client
):
    client.force_login(make_user(Role.TOWNSHIP_OFFICIAL, [regions["township1"]]))
    own = next(h for h in homes if h.township == T1)
    other = next(h for h in homes if h.township == T2)

    response = client.get(reverse("maps:popup", args=[own.pk]))
    assert response.status_code == 200
    text = response.content.decode()
    assert own.head_name in text and own.archive_no in text
    assert reverse("portal:household_detail", args=[own.pk]) in text

    response = client.get(reverse("maps:popup", args=[other.pk]))
    assert response.status_code == 404
    assert other.head_name not in response.content.decode()
    assert client.get(reverse("maps:popup", args=[10**9])).status_code == 404


def test_anonymous_is_sent_to_log_in(regions, client):
    household = HouseholdFactory(village=regions["village1"])
    login = reverse("login")
    for url in (
        reverse("maps:tile", args=[10, 819, 431]),
        reverse("maps:popup", args=[household.pk]),
        reverse("maps:overview", args=[COUNTY]),
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(login + "?next="), url
        assert household.head_name not in response.content.decode()


# ---------------------------------------------------------------------------------------
# Filters


def matches(home: Home, params: dict) -> bool:
    if params.get("key_group") and home.group != params["key_group"]:
        return False
    if "grade" in params and (home.grade or "none") not in params["grade"]:
        return False
    if "state" in params and (home.state or "none") not in params["state"]:
        return False
    if "region" in params and not home.village.startswith(params["region"]):
        return False
    return "year" not in params or home.year == params["year"]


FILTERS = [
    {"key_group": "minimum_income"},
    {"grade": ["C", "D"]},
    {"grade": ["none"]},
    {"grade": ["A", "none"]},
    {"state": ["none"]},
    {"state": ["applied", "works_started"]},
    {"state": ["none", "paid"]},
    {"year": 2026},
    {"key_group": "registered_poor", "grade": ["D", "none"], "state": ["none", "applied"]},
    {"region": V1B},
    {"region": T2, "grade": ["D"]},
]


def test_filters_give_exactly_the_matching_households(homes, make_user, client):
    """Through the view (the form parses the query) on the pyramid, on cells counted on the
    fly and on single houses."""
    admin = make_user(Role.ADMINISTRATOR)
    client.force_login(admin)
    for params in FILTERS:
        want = [h for h in homes if matches(h, params)]
        assert want, f"the data should have households for {params}"
        query = urlencode(params, doseq=True)
        form = TileFilterForm(QueryDict(query))
        assert form.is_valid(), form.errors
        for z in (8, 11, 13, 16):
            features = []
            if z <= 12:
                for x, y in tiles_over(AREA, z, margin=0):
                    response = client.get(reverse("maps:tile", args=[z, x, y]) + "?" + query)
                    assert response.status_code == 200
                    assert response["Content-Type"] == "application/geo+json"
                    features.extend(response.json()["features"])
            else:  # hundreds of tiles: the same filters, parsed by the view's form
                features = features_of(admin, z, tiles_near(homes, z), form.filters())
            got = summary(features)
            assert got["total"] == len(want), (params, z)
            assert got["grades"] == expected(want)["grades"], (params, z)
            assert got["stages"] == expected(want)["stages"], (params, z)
            if z == 16:
                assert sorted(got["ids"]) == sorted(h.pk for h in want), params


def test_the_region_filter_does_not_widen_the_scope(homes, regions, make_user, client):
    client.force_login(make_user(Role.TOWNSHIP_OFFICIAL, [regions["township1"]]))
    for z in (10, 16):
        for region, want in ((T2, []), (COUNTY, in_scope(homes, T1)), (V1, in_scope(homes, V1))):
            features = []
            for x, y in tiles_over(AREA, z, margin=0) if z <= 12 else tiles_near(homes, z):
                response = client.get(reverse("maps:tile", args=[z, x, y]), {"region": region})
                features.extend(response.json()["features"])
            assert summary(features)["total"] == len(want), (z, region)


BAD_FILTERS = [
    ("grade=Z", "Grade"),
    ("grade=A&grade=E", "Grade"),
    ("state=built", "Case state"),
    ("state=none&state=", "Case state"),
    ("year=twenty", "Funding year"),
    ("year=1800", "Funding year"),
    ("key_group=nobody", "Key group"),
    ("region=52x", "Region code"),
]


def test_a_bad_filter_is_a_400_naming_the_field(make_user, client):
    client.force_login(make_user(Role.ADMINISTRATOR))
    version = points.version()
    for query, field in BAD_FILTERS:
        response = client.get(reverse("maps:tile", args=[10, 819, 431]) + "?" + query)

        assert response.status_code == 400, query
        assert response["Content-Type"].startswith("text/plain"), query
        assert response.content.decode().startswith(f"{field}: "), query
        assert "ETag" not in response, query
    assert points.version() == version


def test_a_tile_outside_the_grid_is_a_404(make_user, client):
    client.force_login(make_user(Role.ADMINISTRATOR))
    for z, x, y in [
        (21, 0, 0),
        (99, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
        (3, 8, 0),
        (3, 0, 8),
        (15, 2**15, 3),
    ]:
        assert client.get(reverse("maps:tile", args=[z, x, y])).status_code == 404, (z, x, y)
    for url in (
        "/maps/tiles/-1/0/0.geojson",
        "/maps/tiles/3/-1/0.geojson",
        "/maps/tiles/3/0/0.json",
    ):
        assert client.get(url).status_code == 404, url


# ---------------------------------------------------------------------------------------
# Caching


def test_tiles_carry_a_private_etag_and_answer_304_when_unchanged(homes, make_user, client):
    client.force_login(make_user(Role.ADMINISTRATOR))
    url = reverse("maps:tile", args=[10, *tile_of(107.95, 27.22, 10)])

    first = client.get(url)
    etag = first["ETag"]
    assert first.status_code == 200 and first.json()["features"]
    assert re.fullmatch(r'"v\d+-[0-9a-f]{16}"', etag)
    cache = {part.strip() for part in first["Cache-Control"].split(",")}
    assert "private" in cache and "max-age=60" in cache and "public" not in cache
    assert "Cookie" in first["Vary"]
    assert first["Content-Type"] == "application/geo+json"
    # JSON for the map's script, never a document: no policy to build (pages keep theirs).
    assert "Content-Security-Policy" not in first
    assert "Content-Security-Policy" in client.get(reverse("maps:overview_index"))

    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert "private" in again["Cache-Control"]
    assert client.get(url, headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_the_etag_changes_with_the_data_the_scope_and_the_filters(
    homes, regions, make_user, client, settings
):
    url = reverse("maps:tile", args=[10, *tile_of(107.95, 27.22, 10)])
    admin = make_user(Role.ADMINISTRATOR)
    client.force_login(admin)
    etag = client.get(url)["ETag"]

    house = House.objects.filter(household_id=homes[0].pk, is_current=True).first()
    house = house or HouseFactory(household_id=homes[0].pk)
    house.safety_grade = "A" if house.safety_grade != "A" else "B"
    house.save()

    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    etag = changed["ETag"]
    filtered = client.get(url + "?grade=A")["ETag"]
    assert filtered not in (etag, client.get(url + "?grade=B")["ETag"])
    assert (
        client.get(url + "?grade=A&grade=B")["ETag"] == client.get(url + "?grade=B&grade=A")["ETag"]
    )

    tags = {"admin": etag}
    for name, region in (("t1", "township1"), ("t2", "township2"), ("county", "county")):
        client.force_login(make_user(Role.TOWNSHIP_OFFICIAL, [regions[region]]))
        tags[name] = client.get(url)["ETag"]
    assert len(set(tags.values())) == len(tags)
    # The same scope is the same tile: a second township-1 user shares the ETag.
    client.force_login(make_user(Role.TOWNSHIP_OFFICIAL, [regions["township1"]]))
    assert client.get(url)["ETag"] == tags["t1"]
    # Drawn over a GCJ-02 base map the houses move: another tile, another ETag.
    settings.MAP_BASEMAP_CRS = "gcj02"
    assert client.get(url)["ETag"] != tags["t1"]


def test_the_etag_differs_between_regions(regions, make_user, client):
    HouseholdFactory(village=regions["village1"], location=Point(107.91, 27.21, srid=4326))
    client.force_login(make_user(Role.ADMINISTRATOR))
    url = reverse("maps:tile", args=[10, *tile_of(107.91, 27.21, 10)])

    one, other = client.get(url, {"region": V1}), client.get(url, {"region": V2})

    assert len(one.json()["features"]) == 1 and other.json()["features"] == []
    assert one["ETag"] != other["ETag"]


# ---------------------------------------------------------------------------------------
# GCJ-02 display shift


@pytest.fixture
def beijing(regions):
    """Two households at one spot of the published WGS84/GCJ-02 pair near Beijing."""
    wgs_lat, wgs_lon, gcj_lat, gcj_lon = REFERENCE[2].values
    made = [
        HouseholdFactory(village=regions["village1"], location=Point(wgs_lon, wgs_lat, srid=4326))
        for _ in range(2)
    ]
    return {"ids": sorted(h.pk for h in made), "wgs": (wgs_lon, wgs_lat), "gcj": (gcj_lon, gcj_lat)}


def get_tile(client, z, lonlat):
    response = client.get(reverse("maps:tile", args=[z, *tile_of(*lonlat, z)]))
    assert response.status_code == 200
    return response.json()["features"]


def test_close_up_houses_are_drawn_at_their_gcj02_position_over_a_gcj02_map(
    beijing, make_user, client, settings
):
    client.force_login(make_user(Role.ADMINISTRATOR))
    z = 17  # tiles ~230 m wide: the ~550 m shift moves the houses to another tile
    assert tile_of(*beijing["gcj"], z) != tile_of(*beijing["wgs"], z)

    settings.MAP_BASEMAP_CRS = "gcj02"
    features = get_tile(client, z, beijing["gcj"])
    assert sorted(f["properties"]["id"] for f in features) == beijing["ids"]
    for f in features:
        assert f["geometry"]["coordinates"] == pytest.approx(list(beijing["gcj"]), abs=1e-5)
    assert get_tile(client, z, beijing["wgs"]) == []

    settings.MAP_BASEMAP_CRS = "wgs84"
    features = get_tile(client, z, beijing["wgs"])
    assert sorted(f["properties"]["id"] for f in features) == beijing["ids"]
    for f in features:
        assert f["geometry"]["coordinates"] == pytest.approx(list(beijing["wgs"]), abs=1e-6)
    assert get_tile(client, z, beijing["gcj"]) == []


@pytest.mark.parametrize("z", [4, 10, 12, 13, 14])
def test_cell_means_are_shifted_too(beijing, make_user, client, settings, z):
    """Cells are cut on the stored positions (same tile either way), their mean drawn shifted."""
    client.force_login(make_user(Role.ADMINISTRATOR))
    for crs, where, tolerance in (("gcj02", "gcj", 1e-5), ("wgs84", "wgs", 1e-6)):
        settings.MAP_BASEMAP_CRS = crs
        (cell,) = get_tile(client, z, beijing["wgs"])
        assert cell["properties"]["n"] == 2
        assert cell["geometry"]["coordinates"] == pytest.approx(list(beijing[where]), abs=tolerance)


def test_published_pair_is_what_the_shift_uses():
    """The pair the tests above check against is the one housing.coords reproduces."""
    wgs_lat, wgs_lon, gcj_lat, gcj_lon = REFERENCE[2].values
    assert wgs84_to_gcj02(wgs_lon, wgs_lat) == pytest.approx((gcj_lon, gcj_lat), abs=1e-9)
    # Also the well-known Tiananmen pair, to 1e-5 degrees.
    assert wgs84_to_gcj02(116.397128, 39.916527) == pytest.approx((116.403370, 39.917923), abs=1e-5)


# ---------------------------------------------------------------------------------------
# Region figures


def hand_count(homes) -> dict:
    return {
        "households": len(homes),
        "located": sum(h.located for h in homes),
        "grades": {k: sum((h.grade or "none") == k for h in homes) for k in GRADE_KEYS},
        "stages": {k: sum(STAGE_OF_STATE[h.state] == k for h in homes) for k in STAGE_KEYS},
        "states": {s: sum(h.state == s for h in homes) for s in CaseState.values},
    }


def figures_dict(figures) -> dict:
    return {
        "households": figures.households,
        "located": figures.located,
        "grades": figures.grades,
        "stages": figures.stages,
        "states": figures.states,
    }


def test_region_figures_per_township_and_per_village_equal_a_hand_count(
    unlocated, regions, make_user
):
    official = make_user(Role.COUNTY_OFFICIAL, [regions["county"]])

    total, children = region_figures(user=official, region=regions["county"])

    assert [c.region.code for c in children] == [T1, T2]
    for child in children:
        assert figures_dict(child) == hand_count(in_scope(unlocated, child.region.code))
    assert figures_dict(total) == hand_count(unlocated)
    assert total.located == total.households - 2
    _total, villages = region_figures(user=official, region=regions["township1"])
    assert [(v.region.code, figures_dict(v)) for v in villages] == [
        (V1, hand_count(in_scope(unlocated, V1))),
        (V1B, hand_count(in_scope(unlocated, V1B))),
    ]
    total, none = region_figures(user=official, region=regions["village2"])
    assert none == []
    assert figures_dict(total) == hand_count(in_scope(unlocated, V2))


def test_region_figures_follow_the_filters(unlocated, regions, make_user):
    official = make_user(Role.COUNTY_OFFICIAL, [regions["county"]])
    for params in FILTERS:
        filters = MapFilters(
            key_group=params.get("key_group", ""),
            grades=tuple(params.get("grade", ())),
            states=tuple(params.get("state", ())),
            year=params.get("year"),
            region=params.get("region", ""),
        )

        total, children = region_figures(user=official, region=regions["county"], filters=filters)

        want = [h for h in unlocated if matches(h, params)]
        assert figures_dict(total) == hand_count(want), params
        for child in children:
            assert figures_dict(child) == hand_count(in_scope(want, child.region.code)), params


def test_region_figures_of_a_township_official_leave_out_the_other_township(
    unlocated, regions, make_user
):
    official = make_user(Role.TOWNSHIP_OFFICIAL, [regions["township1"]])

    total, children = region_figures(user=official, region=regions["county"])

    assert [c.region.code for c in children] == [T1]
    assert figures_dict(total) == hand_count(in_scope(unlocated, T1))
    inspector = make_user(Role.INSPECTOR, [regions["village1"]])
    total, children = region_figures(user=inspector, region=regions["township1"])
    assert [c.region.code for c in children] == [V1]
    assert figures_dict(total) == hand_count(in_scope(unlocated, V1))


def test_region_figures_cost_the_same_queries_whatever_the_number_of_households(
    homes, regions, make_user, django_assert_max_num_queries
):
    official = make_user(Role.COUNTY_OFFICIAL, [regions["county"]])
    filters = MapFilters(key_group="minimum_income", grades=("C", "D"))
    with CaptureQueriesContext(connection) as few:
        region_figures(user=official, region=regions["county"], filters=filters)

    build = Builder(villages_for(regions))
    for i in range(30):
        build.add([V1, V1B, V2][i % 3], 107.91 + i * 0.004, 27.21, grade="CD"[i % 2])

    with django_assert_max_num_queries(len(few)):
        total, _children = region_figures(user=official, region=regions["county"], filters=filters)
    assert total.households == 30 + len(
        [h for h in homes if matches(h, {"key_group": "minimum_income", "grade": ["C", "D"]})]
    )


# ---------------------------------------------------------------------------------------
# The overview page


def test_the_overview_holds_no_households_loads_only_our_static_files_and_drills_down(
    unlocated, county_official, client, settings
):
    settings.MAP_BASEMAP = ""
    client.force_login(county_official)

    response = client.get(reverse("maps:overview", args=[COUNTY]) + "?grade=D&grade=none")

    assert response.status_code == 200
    page = response.content.decode()
    for home in unlocated:
        assert home.head_name not in page
        assert home.archive_no not in page
        assert reverse("maps:popup", args=[home.pk]) not in page
    config = json.loads(re.search(r'id="overview-config"[^>]*>(.*?)</script>', page, re.S)[1])
    assert (
        config["tiles"]
        == f"/maps/tiles/{{z}}/{{x}}/{{y}}.geojson?grade=D&grade=none&region={COUNTY}"
    )
    assert config["popup"] == "/maps/households/{id}/popup/"
    assert '"Point"' not in page  # region shapes only, no house points
    sources = re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", page)
    sources += re.findall(r"<link[^>]*\shref=\"([^\"]+)\"", page)
    assert sources and all(s.startswith("/static/") for s in sources), sources
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "url(http" not in page and "@import" not in page
    # Drill-down: the table's links and the shapes' clicks, keeping the filters.
    for code in (T1, T2):
        assert f'href="/maps/{code}/?grade=D&amp;grade=none"' in page
        # folium writes "&" in its JSON as \\u0026
        assert f'"url": "/maps/{code}/?grade=D\\u0026grade=none"' in page


def test_a_bad_filter_on_the_overview_is_a_400_that_says_which(regions, county_official, client):
    client.force_login(county_official)

    response = client.get(reverse("maps:overview", args=[COUNTY]) + "?grade=Z&year=x")

    assert response.status_code == 400
    page = response.content.decode()
    assert "Some filters are not valid" in page
    assert "Funding year" in page and "Grade" in page


def test_a_village_overview_shows_its_own_figures(unlocated, county_official, client):
    client.force_login(county_official)

    response = client.get(reverse("maps:overview", args=[V2]))

    assert response.status_code == 200
    assert response.context["total"].households == len(in_scope(unlocated, V2))
    assert response.context["rows"] == []
    config = json.loads(
        re.search(r'id="overview-config"[^>]*>(.*?)</script>', response.content.decode(), re.S)[1]
    )
    assert config["tiles"].endswith(f"?region={V2}")


def test_a_township_official_cannot_open_another_townships_overview(regions, make_user, client):
    client.force_login(make_user(Role.TOWNSHIP_OFFICIAL, [regions["township1"]]))
    assert client.get(reverse("maps:overview", args=[T2])).status_code == 404
    assert client.get(reverse("maps:overview", args=[T1])).status_code == 200


def test_popup_shows_the_latest_photo_thumbnail_and_the_case(regions, make_user, client):
    """A real JPEG through the photo pipeline: the card links its thumbnail, which loads."""
    from inspections.models import PhotoAngle, PhotoStage
    from tests.inspections.factories import InspectionFactory, upload_photo
    from tests.inspections.images import jpeg

    house = HouseFactory(household=HouseholdFactory(village=regions["village1"]))
    inspection = InspectionFactory(house=house)
    upload_photo(inspection, jpeg(seed=3), stage=PhotoStage.BEFORE, angle=PhotoAngle.FRONT)
    newest, _created = upload_photo(
        inspection, jpeg(seed=4), stage=PhotoStage.BEFORE, angle=PhotoAngle.LEFT
    )
    client.force_login(make_user(Role.COUNTY_OFFICIAL, [regions["county"]]))

    response = client.get(reverse("maps:popup", args=[house.household_id]))
    assert response.status_code == 200
    thumb = reverse("inspections:photo_file", args=[newest.key, "thumb"])
    assert f'src="{thumb}"' in response.content.decode()
    image = client.get(thumb)
    assert (image.status_code, image["Content-Type"]) == (200, "image/jpeg")


def test_tile_forms_share_their_fields_and_nothing_else():
    """TileFilterForm instances use the class's fields (not deep copies): one request's
    values or errors must never show in another's form."""
    bad = TileFilterForm(QueryDict("grade=Z&year=1"))
    good = TileFilterForm(QueryDict("grade=D&year=2024"))
    assert bad.fields is good.fields
    assert not bad.is_valid()
    assert good.is_valid() and good.errors == {}
    assert good.filters().grades == ("D",) and good.filters().year == 2024
    assert set(bad.errors) == {"grade", "year"}


@pytest.mark.parametrize("z", [15, 16, 17, 18])
def test_features_written_by_the_database_are_the_ones_python_builds(homes, regions, make_user, z):
    """tile_json's close-up features (PostgreSQL writes them) against tile()'s, which builds
    them in Python: the same households with the same properties at the same places."""
    from maps.tiles import points_in_sql
    from tests.conftest import is_postgis

    user = make_user(Role.COUNTY_OFFICIAL, [regions["county"]])
    compared = 0
    for x, y in tiles_over(AREA, z, margin=0):
        text = tile_json(user=user, z=z, x=x, y=y, filters=MapFilters())
        by_python = tile(user=user, z=z, x=x, y=y, filters=MapFilters())["features"]
        by_json = json.loads(text)["features"]
        assert len(by_json) == len(by_python)
        compared += len(by_json)

        def key(feature):
            return feature["properties"]["id"]

        for a, b in zip(sorted(by_json, key=key), sorted(by_python, key=key), strict=True):
            assert a["properties"] == b["properties"] and a["type"] == b["type"]
            assert a["geometry"]["type"] == "Point"
            for got, want in zip(
                a["geometry"]["coordinates"], b["geometry"]["coordinates"], strict=True
            ):
                assert abs(got - want) <= 1.1e-6
    assert compared == sum(1 for h in homes if h.located)
    assert points_in_sql(z) == is_postgis()
