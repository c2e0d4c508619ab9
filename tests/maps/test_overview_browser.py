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


def region_codes(page) -> list[str]:
    """The codes of the shaded regions drawn on the map (its GeoJSON features with a link)."""
    return page.evaluate(
        """() => {
            const codes = [];
            window.anjuOverview.map.eachLayer(layer => {
                const p = layer.feature && layer.feature.properties;
                if (p && p.url) codes.push(p.code);
            });
            return codes.sort();
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

    # Two townships shaded (on the map's canvas, with the houses), a legend, the region table.
    assert region_codes(page) == ["520399100", "520399101"]
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


# --- real mouse clicks: houses over regions ------------------------------------------------


def show(page, household, zoom: int):
    """Centre the map on the household at `zoom` (no animation) and wait for its tiles."""
    page.evaluate(
        "([lat, lon, z]) => window.anjuOverview.map.setView([lat, lon], z, {animate: false})",
        [household.location.y, household.location.x, zoom],
    )
    page.wait_for_function(
        """(z) => window.anjuOverview.map.getZoom() === z
            && document.body.dataset.housesLoaded === 'true'""",
        arg=zoom,
        timeout=15000,
    )


def on_screen(page, household) -> dict:
    """Where to click the household, in page pixels: a visible point of its own circle on
    the canvas ("house"); when it is counted in a cell, the centre of the bounding box of
    the cell's bubble, the one nearest to it ("cell"); when it is a point of its own wholly
    under a neighbouring cell's bubble, that bubble's centre ("covered")."""
    return page.evaluate(
        """([id, lat, lon]) => {
            const o = window.anjuOverview, map = o.map;
            const box = map.getContainer().getBoundingClientRect();
            const here = map.latLngToContainerPoint([lat, lon]);
            let house = null, bubble = null, best = Infinity;
            Object.values(o.tiles).forEach(t => t.layer.eachLayer(layer => {
                if (layer.householdId === id) house = layer;
                else if (layer instanceof L.Marker) {
                    const d = map.latLngToContainerPoint(layer.getLatLng()).distanceTo(here);
                    if (d < best) { best = d; bubble = layer; }
                }
            }));
            if (house) {
                // A point of the house's circle (radius 6) that nothing covers: the bubble
                // of a neighbouring cell may lie over part of it.
                const p = map.latLngToContainerPoint(house.getLatLng());
                const offsets = [[0, 0], [0, -4], [0, 4], [-4, 0], [4, 0],
                                 [-3, -3], [3, -3], [-3, 3], [3, 3]];
                for (const [dx, dy] of offsets) {
                    const x = box.left + p.x + dx, y = box.top + p.y + dy;
                    if (document.elementFromPoint(x, y).tagName === "CANVAS") {
                        return {kind: "house", x: x, y: y};
                    }
                }
                bubble = document.elementFromPoint(box.left + p.x, box.top + p.y)
                    .closest(".leaflet-marker-icon");
                const r = bubble.getBoundingClientRect();
                return {kind: "covered", x: r.left + r.width / 2, y: r.top + r.height / 2};
            }
            const r = bubble.getElement().getBoundingClientRect();
            return {kind: "cell", x: r.left + r.width / 2, y: r.top + r.height / 2};
        }""",
        [household.pk, household.location.y, household.location.x],
    )


def test_real_mouse_clicks_on_houses_open_them_at_every_zoom(
    page, live_server, county_official, regions, mapped
):
    """On a township's map the village under the houses drills down on a click: a click on a
    house, with the mouse, must open the house's popup instead, at every zoom the map has;
    a click on a cell of several houses zooms in on it."""
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    browser_login(page, live_server, county_official)
    url = f"{live_server.url}/maps/520399100/"
    page.goto(url)
    wait_for_houses(page)
    assert region_codes(page) == ["520399100200"]
    target = mapped[1]
    first = page.evaluate("() => window.anjuOverview.map.getZoom()")
    last = page.evaluate("() => window.anjuOverview.map.getMaxZoom()")
    assert last == 18
    kinds = {}
    for zoom in range(first, last + 1):
        show(page, target, zoom)
        spot = on_screen(page, target)
        kinds[zoom] = spot["kind"]
        page.mouse.click(spot["x"], spot["y"])
        if spot["kind"] == "house":
            popup = page.locator(".leaflet-popup-content .map-popup")
            popup.wait_for(timeout=10000)
            assert target.head_name in popup.inner_text(), zoom
            page.evaluate("() => window.anjuOverview.map.closePopup()")
        else:
            # Zoomed in on the cell, the animation over (until then the map takes no view).
            page.wait_for_function(
                """(z) => {
                    const map = window.anjuOverview.map;
                    return map.getZoom() === z
                        && !map.getPane("mapPane").classList.contains("leaflet-zoom-anim");
                }""",
                arg=min(zoom + 2, last),
                timeout=10000,
            )
            assert page.locator(".leaflet-popup").count() == 0, zoom
        # The village under the house did not take the click.
        assert page.url == url, zoom
    # Zoomed out the house is in a cell; close up it is a point of its own, up to the end.
    assert kinds[first] == "cell"
    assert all(kinds[z] == "house" for z in range(15, last + 1)), kinds
    assert errors == []
    assert page.external_requests == []


def test_a_real_mouse_on_a_region_away_from_houses_shows_it_and_drills_down(
    page, live_server, county_official, regions, mapped
):
    browser_login(page, live_server, county_official)
    page.goto(f"{live_server.url}/maps/520399100/")
    wait_for_houses(page)
    # Village 1's north-east, far from its houses (all in its south-west corner).
    x, y = page.evaluate(
        """() => {
            const map = window.anjuOverview.map;
            const box = map.getContainer().getBoundingClientRect();
            const p = map.latLngToContainerPoint([27.24, 107.94]);
            return [box.left + p.x, box.top + p.y];
        }"""
    )
    page.mouse.move(x, y)
    tip = page.locator(".leaflet-tooltip:not(.region-label)")
    tip.wait_for(timeout=5000)
    assert regions["village1"].name in tip.inner_text()
    page.mouse.click(x, y)
    page.wait_for_url("**/maps/520399100200/")


# --- region labels ----------------------------------------------------------------------------


def labels(page) -> dict[str, bool]:
    """{region name: shown} of the map's region labels."""
    return page.evaluate(
        """() => Object.fromEntries(window.anjuOverview.labels.map(label => [
            label.name,
            !label.element.classList.contains("region-label--hidden")
                && getComputedStyle(label.element).visibility === "visible",
        ]))"""
    )


def test_region_names_are_on_the_map_and_step_aside_when_zoomed_out(
    page, live_server, county_official, regions, mapped
):
    browser_login(page, live_server, county_official)
    page.goto(f"{live_server.url}/maps/520399/")
    wait_for_houses(page)
    assert labels(page) == {"龙溪镇": True, "白泥镇": True}
    label = page.locator(".region-label", has_text="龙溪镇")
    assert label.is_visible()
    # A label never takes a click meant for what is under it.
    assert label.evaluate("e => getComputedStyle(e).pointerEvents") == "none"
    # Inside its region: the label's centre is within the township's square.
    centre = label.evaluate(
        """e => {
            const r = e.getBoundingClientRect();
            const map = window.anjuOverview.map, box = map.getContainer().getBoundingClientRect();
            return map.containerPointToLatLng([r.left + r.width / 2 - box.left,
                                               r.top + r.height / 2 - box.top]);
        }"""
    )
    assert 107.9 < centre["lng"] < 108.0 and 27.2 < centre["lat"] < 27.3
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "maps-overview-labels.png"))

    # Zoomed far out the townships are a few pixels wide: no names piled up on them.
    zoom = page.evaluate("() => window.anjuOverview.map.getZoom()")
    page.evaluate("(z) => window.anjuOverview.map.setZoom(z, {animate: false})", zoom - 4)
    page.wait_for_function("(z) => window.anjuOverview.map.getZoom() === z", arg=zoom - 4)
    assert labels(page) == {"龙溪镇": False, "白泥镇": False}
    page.evaluate("(z) => window.anjuOverview.map.setZoom(z, {animate: false})", zoom)
    page.wait_for_function("(z) => window.anjuOverview.map.getZoom() === z", arg=zoom)
    assert labels(page) == {"龙溪镇": True, "白泥镇": True}


# --- the zoom buttons speak the page's language -------------------------------------------------


def test_zoom_buttons_are_titled_in_the_readers_language_on_every_map(
    page, live_server, county_official, regions, mapped
):
    from django.urls import reverse
    from django.utils import translation

    with translation.override("zh-hans"):
        zoom_in, zoom_out = translation.gettext("Zoom in"), translation.gettext("Zoom out")
    browser_login(page, live_server, county_official)
    # The reader picks Chinese with the page's own language form.
    page.select_option("#language-select", "zh-hans")
    page.locator(".language-form button").click()
    page.wait_for_load_state()
    for path in (
        reverse("maps:overview", args=["520399"]),
        reverse("portal:household_detail", args=[mapped[0].pk]),
        reverse("portal:region_detail", args=["520399"]),
    ):
        page.goto(f"{live_server.url}{path}")
        assert page.locator("html").get_attribute("lang") == "zh-hans", path
        button_in = page.locator(".leaflet-control-zoom-in")
        button_in.wait_for(timeout=5000)
        assert page.locator(".leaflet-control-zoom").count() == 1, path
        assert button_in.get_attribute("title") == zoom_in, path
        assert page.locator(".leaflet-control-zoom-out").get_attribute("title") == zoom_out, path
    # The buttons still zoom.
    page.goto(f"{live_server.url}{reverse('maps:overview', args=['520399'])}")
    wait_for_houses(page)
    zoom = page.evaluate("() => window.anjuOverview.map.getZoom()")
    page.locator(".leaflet-control-zoom-in").click()
    page.wait_for_function("(z) => window.anjuOverview.map.getZoom() === z + 1", arg=zoom)
    assert page.external_requests == []
