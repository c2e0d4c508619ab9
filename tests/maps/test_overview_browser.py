"""The county overview in a real browser (Debian's Chromium), with every request to another
host blocked: regions shaded, houses drawn from tiles, drill-down to a village, a click on a
house opening its popup and the household file. A screenshot is kept in test-artifacts/."""

import pytest
from django.contrib.gis.geos import Point

from housing.models import SafetyGrade
from tests.conftest import ARTIFACTS, browser_login
from tests.factories import HouseFactory, HouseholdFactory

pytestmark = pytest.mark.django_db(transaction=True)


def point(lon, lat):
    return Point(lon, lat, srid=4326)


@pytest.fixture
def mapped(regions):
    """Three C/D houses and two A houses in village 1, two B houses in village 2."""
    made = []
    for i, grade in enumerate("CDDAA"):
        household = HouseholdFactory(
            village=regions["village1"], location=point(107.9 + i * 0.004, 27.2 + i * 0.003)
        )
        HouseFactory(household=household, safety_grade=grade)
        made.append(household)
    for i in range(2):
        household = HouseholdFactory(
            village=regions["village2"], location=point(108.0 + i * 0.004, 27.2)
        )
        HouseFactory(household=household, safety_grade=SafetyGrade.B)
        made.append(household)
    return made


def houses_drawn(page) -> int:
    """How many households the loaded tiles hold (a cell counts its houses)."""
    return page.evaluate(
        """() => {
            let n = 0;
            Object.values(window.anjuOverview.tiles).forEach(
                t => t.features.forEach(f => { n += f.properties.n; }));
            return n;
        }"""
    )


def wait_for_houses(page):
    page.wait_for_function("() => document.body.dataset.housesLoaded === 'true'", timeout=15000)


def test_overview_renders_regions_and_houses_offline_and_drills_down(
    page, live_server, county_official, regions, mapped
):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    browser_login(page, live_server, county_official)
    page.goto(f"{live_server.url}/maps/")
    assert page.url.endswith("/maps/520399/")
    wait_for_houses(page)

    # Two townships shaded (SVG paths of the regions layer), a legend, the region table.
    assert page.locator("path.leaflet-interactive").count() >= 2
    assert page.locator("#legend-regions").is_visible()
    rows = page.locator("table.counts tbody tr")
    assert rows.count() == 2
    # Houses come from tiles: a canvas for single houses or bubbles for cells.
    drawn = houses_drawn(page)
    assert drawn == len(mapped)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "maps-overview-county.png"), full_page=True)

    # Drill down: township, then village, through the region table's links.
    page.locator("table.counts tbody a", has_text=regions["township1"].name).click()
    page.wait_for_url("**/maps/520399100/")
    wait_for_houses(page)
    page.locator("table.counts tbody a", has_text=regions["village1"].name).click()
    page.wait_for_url("**/maps/520399100200/")
    wait_for_houses(page)
    drawn = houses_drawn(page)
    assert drawn == 5

    # Zoom in until the houses are single points, then click one: popup, then the file.
    target = mapped[0]
    page.evaluate(
        "([lat, lon]) => window.anjuOverview.map.setView([lat, lon], 17)",
        [target.location.y, target.location.x],
    )
    # Wait until the house itself is drawn (the zoom animates; tiles load after it).
    page.wait_for_function(
        """(id) => {
            let found = false;
            window.anjuOverview.map.eachLayer(layer => {
                if (layer.householdId === id) found = true;
            });
            return found;
        }""",
        arg=target.pk,
        timeout=15000,
    )
    page.evaluate(
        """(id) => {
            const map = window.anjuOverview.map;
            map.eachLayer(layer => {
                if (layer.householdId === id) layer.fire("click");
            });
        }""",
        target.pk,
    )
    popup = page.locator(".leaflet-popup-content .map-popup")
    popup.wait_for(timeout=10000)
    assert target.head_name in popup.inner_text()
    page.screenshot(path=str(ARTIFACTS / "maps-overview-village-popup.png"))
    popup.locator("a").click()
    page.wait_for_url(f"**/households/{target.pk}/")

    assert page.external_requests == []
    assert errors == []


def test_colour_switch_and_filters_redraw_without_outside_requests(
    page, live_server, county_official, regions, mapped
):
    browser_login(page, live_server, county_official)
    page.goto(f"{live_server.url}/maps/520399/?grade=C&grade=D")
    wait_for_houses(page)
    drawn = houses_drawn(page)
    assert drawn == 3
    page.select_option("select[name=colour]", "stage")
    legend = page.locator("#point-legend").inner_text()
    assert "No case" in legend
    assert page.external_requests == []
