"""The household file's map: the house, its photos' GPS points, lines with distances, a table.

Photos are real JPEGs with EXIF GPS, uploaded and processed through the photo pipeline, so
their positions and "far from the house" flags are the ones production would store.
"""

import datetime
import json
import math
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from accounts.scoping import user_region_codes
from housing.coords import wgs84_to_gcj02
from maps.builders import (
    BOUNDARY_COLOUR,
    HOUSE_COLOUR,
    PHOTO_COLOUR,
    PHOTO_FAR_COLOUR,
    distance_text,
    household_location_map,
    household_photo_points,
)
from tests.conftest import ARTIFACTS, browser_login
from tests.inspections import images
from tests.inspections.factories import InspectionFactory, upload_photo

pytestmark = pytest.mark.django_db

HOUSE = (107.905, 27.205)  # the factory household's location (lon, lat)
NORTH = (HOUSE[0], HOUSE[1] + 0.01)  # about 1.1 km north: flagged far from the house
EAST = (HOUSE[0] + 0.0004, HOUSE[1])  # about 40 m east: within the 150 m limit

# WGS84 ellipsoid, for distances worked out here independently of the database.
A = 6378137.0
F = 1 / 298.257223563
E2 = F * (2 - F)


def meridian_arc(lat1: float, lat2: float) -> float:
    """Metres along a meridian between two latitudes (Simpson's rule on the radius M)."""
    steps = 100
    h = math.radians(lat2 - lat1) / steps

    def m(phi):
        return A * (1 - E2) / (1 - E2 * math.sin(phi) ** 2) ** 1.5

    start = math.radians(lat1)
    total = m(start) + m(start + steps * h)
    total += sum((4 if i % 2 else 2) * m(start + i * h) for i in range(1, steps))
    return total * h / 3


def parallel_arc(lat: float, dlon: float) -> float:
    """Metres along a parallel (a few tens of metres: as good as the geodesic)."""
    phi = math.radians(lat)
    return A / math.sqrt(1 - E2 * math.sin(phi) ** 2) * math.cos(phi) * math.radians(dlon)


@pytest.fixture
def inspector(make_user, regions):
    return make_user(Role.INSPECTOR, [regions["township1"]], username="li")


def photo_at(inspection, seed, gps, *, angle, stage="before", accuracy=5):
    """A processed photo taken 10 minutes into the visit at ``gps`` (lon, lat) or without GPS."""
    taken = timezone.localtime(inspection.started_at + datetime.timedelta(minutes=10))
    exif = images.make_exif(
        taken_at=taken,
        lon=gps[0] if gps else None,
        lat=gps[1] if gps else None,
        accuracy=accuracy if gps else None,
    )
    data = images.jpeg(images.house_picture(seed, size=(320, 240)), exif=exif)
    photo, _created = upload_photo(inspection, data, stage=stage, angle=angle)
    return photo


@pytest.fixture
def photographed(households, inspector):
    """Village 1's household: a photo 40 m east, one 0.01° north (flagged), one without GPS."""
    household = households["village1"]
    visit = InspectionFactory(house=household.houses.get(), inspector=inspector)
    near = photo_at(visit, 1, EAST, angle="left")
    far = photo_at(visit, 2, NORTH, angle="front", stage="after", accuracy=12)
    blind = photo_at(visit, 3, None, angle="back")
    return {"household": household, "near": near, "far": far, "blind": blind}


def detail(client, household, **kwargs):
    return client.get(reverse("portal:household_detail", args=[household.pk]), **kwargs)


def map_section(html: str) -> str:
    match = re.search(r'<section[^>]*id="household-map".*?</section>', html, re.S)
    assert match, "no map section"
    return match.group(0)


def map_script(html: str) -> str:
    match = re.search(r"<script[^>]*>\s*var (map_\w+) = L\.map\(.*?</script>", html, re.S)
    assert match, "no map script"
    return match.group(0)


def text(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


def tooltips(script: str) -> dict[str, str]:
    return {
        name: " ".join(body.split())
        for name, body in re.findall(r"(\w+)\.bindTooltip\(\s*`<div>(.*?)</div>`", script, re.S)
    }


def circles(script: str) -> list[dict]:
    """Every circle marker: its display position, fill colour and tooltip."""
    tips = tooltips(script)
    return [
        {
            "lat": float(lat),
            "lon": float(lon),
            "fill": json.loads(options)["fillColor"],
            "tooltip": tips.get(name, ""),
        }
        for name, lat, lon, options in re.findall(
            r"var (circle_marker_\w+) = L\.circleMarker\("
            r"\s*\[([-\d.]+), ([-\d.]+)\],\s*(\{.*?\})\n",
            script,
        )
    ]


def lines(script: str) -> list[dict]:
    """Every polyline: its display [lat, lon] ends, style and tooltip."""
    tips = tooltips(script)
    return [
        {
            "ends": json.loads(ends),
            **{k: v for k, v in json.loads(options).items() if k in ("color", "dashArray")},
            "tooltip": tips.get(name, ""),
        }
        for name, ends, options in re.findall(
            r"var (poly_line_\w+) = L\.polyline\(\s*(\[\[.*?\]\]),\s*(\{.*?\})\n", script
        )
    ]


def fitted_bounds(script: str) -> list[list[float]]:
    return json.loads(re.search(r"fitBounds\(\s*(\[\[.*?\]\])", script, re.S).group(1))


def when(photo) -> str:
    return f"{timezone.localtime(photo.taken_at):%Y-%m-%d %H:%M}"


def at(items, lon, lat):
    """The one item drawn at (lon, lat), to within a millimetre or so."""
    found = [i for i in items if abs(i["lon"] - lon) < 1e-8 and abs(i["lat"] - lat) < 1e-8]
    assert len(found) == 1, (lon, lat, items)
    return found[0]


# --- distances -----------------------------------------------------------------------------


def test_distances_are_geodesic_on_wgs84_and_agree_with_the_far_flag(
    township_official, photographed, django_assert_num_queries
):
    user_region_codes(township_official)  # read once per request, and cached on the user
    with django_assert_num_queries(1):
        points = household_photo_points(user=township_official, household=photographed["household"])

    by_key = {p.photo.key: p for p in points}
    assert set(by_key) == {photographed["near"].key, photographed["far"].key}  # no GPS: skipped
    far, near = by_key[photographed["far"].key], by_key[photographed["near"].key]
    # 0.01° of latitude here is 1108 m on the ellipsoid (1112 m only on a sphere of 6371 km).
    assert far.distance_m == pytest.approx(meridian_arc(HOUSE[1], NORTH[1]), abs=0.5)
    assert far.distance_m == pytest.approx(1108.1, abs=0.5)
    assert near.distance_m == pytest.approx(parallel_arc(HOUSE[1], 0.0004), abs=0.1)
    # The flag's own figure (inspections.evidence) is the same measurement.
    (flag,) = photographed["far"].flags
    assert flag["code"] == "far_from_house"
    assert far.distance_m == pytest.approx(flag["params"]["distance"], abs=0.01)
    assert (far.far, near.far) == (True, False)
    assert (far.distance_text, near.distance_text) == ("1.11 km", "40 m")
    assert (far.accuracy_text, near.accuracy_text) == ("± 12 m", "± 5 m")


@pytest.mark.parametrize(
    ("metres", "expected"),
    [
        (0.4, "0 m"),
        (39.6, "40 m"),
        (999.4, "999 m"),
        (999.6, "1.00 km"),  # never "1,000 m"
        (1108.07, "1.11 km"),  # rounded, not cut to 1.10
        (12345.6, "12.35 km"),
        (1234567, "1,234.57 km"),
    ],
)
def test_distance_text_is_metres_below_a_kilometre_and_kilometres_above(metres, expected):
    assert distance_text(metres) == expected


# --- the map -------------------------------------------------------------------------------


def test_the_map_draws_each_photo_point_with_a_labelled_line_to_the_house(
    client, settings, township_official, photographed
):
    settings.MAP_BASEMAP_CRS = "wgs84"
    client.force_login(township_official)

    script = map_script(detail(client, photographed["household"]).content.decode())

    near, far = photographed["near"], photographed["far"]
    drawn = circles(script)
    assert len(drawn) == 3  # the house and two photos; the photo without GPS is not drawn
    house = at(drawn, *HOUSE)
    assert house["fill"] == HOUSE_COLOUR
    near_point = at(drawn, near.gps.x, near.gps.y)
    assert near_point["fill"] == PHOTO_COLOUR
    assert near_point["tooltip"] == f"Before works · Left side · {when(near)} · 40 m from the house"
    far_point = at(drawn, far.gps.x, far.gps.y)
    assert far_point["fill"] == PHOTO_FAR_COLOUR
    assert far_point["tooltip"] == (
        f"After works · Front · {when(far)} · 1.11 km from the house · Taken far from the house"
    )

    drawn_lines = lines(script)
    assert len(drawn_lines) == 2
    by_end = {tuple(line["ends"][0]): line for line in drawn_lines}
    for line in drawn_lines:
        assert line["ends"][1] == [HOUSE[1], HOUSE[0]]  # every line ends at the house
    near_line = by_end[(near.gps.y, near.gps.x)]
    far_line = by_end[(far.gps.y, far.gps.x)]
    assert (near_line["color"], near_line["dashArray"]) == (PHOTO_COLOUR, None)
    assert (far_line["color"], far_line["dashArray"]) == (PHOTO_FAR_COLOUR, "6 4")
    assert near_line["tooltip"] == near_point["tooltip"]
    assert "1.11 km from the house" in far_line["tooltip"]
    assert (
        "Before works" not in far_line["tooltip"] and "After works · Front" in far_line["tooltip"]
    )

    # Fit to everything: the village square holds the house and both photo points.
    assert fitted_bounds(script) == [[27.2, 107.9], [27.25, 107.95]]
    assert script.count("L.geoJson(") == 1


def test_bounds_grow_to_a_photo_outside_the_village(
    client, township_official, households, inspector
):
    household = households["village1"]
    visit = InspectionFactory(house=household.houses.get(), inspector=inspector)
    photo_at(visit, 4, (107.96, 27.26), angle="front")  # north-east of the village square
    client.force_login(township_official)

    script = map_script(detail(client, household).content.decode())

    (south, west), (north, east) = fitted_bounds(script)
    assert [south, west, north, east] == pytest.approx([27.2, 107.9, 27.26, 107.96], abs=1e-6)


def test_gcj02_shifts_photo_points_and_lines_but_not_the_distances(
    client, settings, township_official, photographed
):
    settings.MAP_BASEMAP_CRS = "gcj02"
    client.force_login(township_official)

    html = detail(client, photographed["household"]).content.decode()

    script = map_script(html)
    drawn = circles(script)
    house_lon, house_lat = wgs84_to_gcj02(*HOUSE)
    assert at(drawn, house_lon, house_lat)["fill"] == HOUSE_COLOUR
    for name, colour in [("near", PHOTO_COLOUR), ("far", PHOTO_FAR_COLOUR)]:
        photo = photographed[name]
        lon, lat = wgs84_to_gcj02(photo.gps.x, photo.gps.y)
        assert (lon, lat) != (photo.gps.x, photo.gps.y)
        assert at(drawn, lon, lat)["fill"] == colour
        assert not [c for c in drawn if (c["lon"], c["lat"]) == (photo.gps.x, photo.gps.y)]
    for line in lines(script):
        assert line["ends"][1] == pytest.approx([house_lat, house_lon], abs=1e-12)
    far_lon, far_lat = wgs84_to_gcj02(*NORTH)
    far_line = next(line for line in lines(script) if line["color"] == PHOTO_FAR_COLOUR)
    assert far_line["ends"][0] == pytest.approx([far_lat, far_lon], abs=1e-9)
    # Distances are measured on the stored WGS84 positions: the same figures as unshifted.
    assert "1.11 km from the house" in far_line["tooltip"]
    assert "1.11 km" in text(map_section(html))


def test_the_legend_explains_what_is_drawn_in_the_colours_drawn(
    client, township_official, photographed
):
    client.force_login(township_official)

    section = map_section(detail(client, photographed["household"]).content.decode())

    legend = re.search(r'<ul class="household-map__legend".*?</ul>', section, re.S).group(0)
    entries = re.findall(
        r'<li data-legend="(\w+)"><span class="[^"]*" style="--swatch: (#\w+)"[^>]*></span>'
        r"([^<]+)</li>",
        legend,
    )
    assert entries == [
        ("point", HOUSE_COLOUR, "House"),
        ("point", PHOTO_COLOUR, "Where a photo was taken (GPS)"),
        ("point", PHOTO_FAR_COLOUR, "Photo flagged as taken far from the house"),
        ("line", PHOTO_COLOUR, "From photo to house: hover or tap for the distance"),
        ("area", BOUNDARY_COLOUR, "Village boundary"),
    ]


def test_the_table_lists_each_photo_point_with_its_distance_accuracy_and_flag(
    client, township_official, photographed
):
    client.force_login(township_official)

    section = map_section(detail(client, photographed["household"]).content.decode())

    rows = re.findall(
        r'<tr data-photo="([-\w]+)"( class="household-map__far")?>(.*?)</tr>', section, re.S
    )
    near, far = photographed["near"], photographed["far"]
    # Newest first, like every photo list; both were taken on one visit, so by upload.
    assert [(key, bool(is_far)) for key, is_far, _row in rows] == [
        (str(far.key), True),
        (str(near.key), False),
    ]
    assert [text(row) for _key, _far, row in rows] == [
        f"Front After works {when(far)} 1.11 km ± 12 m Taken far from the house",
        f"Left side Before works {when(near)} 40 m ± 5 m No",
    ]
    assert f'<a href="/photos/{far.key}/display/">Front</a>' in section
    assert str(photographed["blind"].key) not in section
    headers = re.findall(r'<th scope="col">([^<]+)</th>', section)
    assert headers == [
        "Angle",
        "Stage",
        "Taken at",
        "Distance from the house",
        "GPS accuracy",
        "Flagged",
    ]


# --- edge cases ----------------------------------------------------------------------------


def test_with_a_location_but_no_photo_gps_the_map_is_the_plain_house_map(
    client, township_official, households, inspector
):
    household = households["village1"]
    visit = InspectionFactory(house=household.houses.get(), inspector=inspector)
    photo_at(visit, 5, None, angle="front")
    client.force_login(township_official)

    html = detail(client, household).content.decode()

    section = map_section(html)
    script = map_script(html)
    assert [(c["lon"], c["lat"], c["fill"]) for c in circles(script)] == [(*HOUSE, HOUSE_COLOUR)]
    assert "L.polyline" not in script
    assert "household-map__legend" not in section
    assert "<table" not in section
    assert "no recorded location" not in section
    assert household_location_map(household).script.count("L.circleMarker(") == 1


def test_photos_already_read_without_gps_cost_no_query(
    township_official, households, inspector, django_assert_num_queries
):
    household = households["village1"]
    visit = InspectionFactory(house=household.houses.get(), inspector=inspector)
    blind = photo_at(visit, 5, None, angle="front")
    user_region_codes(township_official)

    with django_assert_num_queries(0):
        for known in ([], [blind]):
            points = household_photo_points(
                user=township_official, household=household, known_photos=known
            )
            assert points == []
    # A known photo with GPS: the query runs and measures it.
    located = photo_at(visit, 6, EAST, angle="left")
    with django_assert_num_queries(1):
        points = household_photo_points(
            user=township_official, household=household, known_photos=[blind, located]
        )
    assert [p.photo.key for p in points] == [located.key]


def test_the_file_costs_the_same_queries_whatever_the_number_of_photo_points(
    client, township_official, households, inspector
):
    household = households["village1"]
    visit = InspectionFactory(house=household.houses.get(), inspector=inspector)
    photo_at(visit, 1, EAST, angle="left")
    client.force_login(township_official)
    detail(client, household)  # the database's one-off look-ups (SRID, versions) happen here

    counts = []
    for seed, angle in [(2, "front"), (3, "back")]:
        with CaptureQueriesContext(connection) as queries:
            assert detail(client, household).status_code == 200
        counts.append(len(queries))
        photo_at(visit, seed, NORTH, angle=angle)
    with CaptureQueriesContext(connection) as queries:
        html = detail(client, household).content.decode()
    counts.append(len(queries))

    assert len(circles(map_script(html))) == 4
    assert counts[0] == counts[1] == counts[2]


def test_without_a_house_location_the_photo_points_are_shown_with_a_note(
    client, township_official, households, inspector
):
    household = households["village1"]
    household.location = None
    household.location_source = ""
    household.save()
    visit = InspectionFactory(house=household.houses.get(), inspector=inspector)
    near = photo_at(visit, 1, EAST, angle="left")
    far = photo_at(visit, 2, NORTH, angle="front")
    client.force_login(township_official)

    html = detail(client, household).content.decode()

    section = map_section(html)
    assert "This house has no recorded location" in text(section)
    assert "° N" not in html  # no location line in the household's fields
    script = map_script(html)
    drawn = circles(script)
    assert len(drawn) == 2
    for photo in (near, far):
        point = at(drawn, photo.gps.x, photo.gps.y)
        # Nothing to measure against: no distance, and no far flag was raised.
        assert point["fill"] == PHOTO_COLOUR
        assert point["tooltip"].endswith(when(photo))
        assert "from the house" not in point["tooltip"]
    assert "L.polyline" not in script
    legend = re.findall(r'<li data-legend="(\w+)">', section)
    assert legend == ["point", "area"]
    assert "House<" not in section
    rows = re.findall(r"<tr data-photo=.*?</tr>", section, re.S)
    assert len(rows) == 2
    assert all(" — ± 5 m No" in text(row) for row in rows)


def test_without_location_or_photo_gps_there_is_no_map(client, township_official, regions):
    from tests.factories import HouseholdFactory

    household = HouseholdFactory(village=regions["village1"], location=None, location_source="")
    client.force_login(township_official)

    html = detail(client, household).content.decode()

    assert 'id="household-map"' not in html
    assert "leaflet" not in html


# --- scoping -------------------------------------------------------------------------------


def test_a_user_outside_the_region_gets_404_and_no_photo_points(
    client, make_user, regions, photographed
):
    outsider = make_user(Role.TOWNSHIP_OFFICIAL, [regions["township2"]], username="t2")
    client.force_login(outsider)

    assert detail(client, photographed["household"]).status_code == 404
    assert household_photo_points(user=outsider, household=photographed["household"]) == []


def test_only_this_households_photos_are_drawn(
    client, make_user, regions, households, photographed, county_official
):
    other_inspector = make_user(Role.INSPECTOR, [regions["township2"]], username="wang")
    other = InspectionFactory(house=households["village2"].houses.get(), inspector=other_inspector)
    stranger = photo_at(other, 6, (107.9042, 27.2051), angle="front")
    client.force_login(county_official)

    html = detail(client, photographed["household"]).content.decode()

    section, script = map_section(html), map_script(html)
    assert str(stranger.key) not in section
    assert len(circles(script)) == 3
    assert not [c for c in circles(script) if (c["lon"], c["lat"]) == (107.9042, 27.2051)]


# --- in a browser --------------------------------------------------------------------------


@pytest.mark.browser
def test_the_map_draws_in_a_browser_offline_and_fits_a_phone(
    page, live_server, township_official, photographed
):
    page.set_viewport_size({"width": 360, "height": 740})
    browser_login(page, live_server, township_official)

    page.goto(f"{live_server.url}/households/{photographed['household'].pk}/")
    page.wait_for_selector("#household-map path.leaflet-interactive")
    far_marker = page.locator(f'#household-map path[fill="{PHOTO_FAR_COLOUR}"]')
    far_marker.scroll_into_view_if_needed()
    far_marker.hover()
    tooltip = page.wait_for_selector(".leaflet-tooltip")
    drawn = page.evaluate(
        """() => ({
            page: document.documentElement.scrollWidth,
            paths: document.querySelectorAll('#household-map path.leaflet-interactive').length,
            dashed: document.querySelectorAll(
                '#household-map path[stroke-dasharray="6 4"]').length,
        })"""
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "household-map-360.png"), full_page=True)

    assert "1.11 km from the house" in tooltip.inner_text()
    assert drawn["paths"] == 6  # boundary, two lines, the house, two photo points
    assert drawn["dashed"] == 1  # the far photo's line
    assert drawn["page"] <= 360
    assert page.external_requests == []
