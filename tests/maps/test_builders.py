"""Folium page builders: nothing from a CDN, the base map from settings, GCJ-02 for display."""

import json
import re

import pytest
from django.contrib.gis.geos import Point

from housing.coords import wgs84_to_gcj02
from housing.models import Household, Region, RegionLevel
from maps.builders import household_location_map, region_map, tooltip_text
from tests.factories import square

LON, LAT = 107.905, 27.205
JS_STRING = r'("(?:[^"\\]|\\.)*")'
CIRCLE = re.compile(r"L\.circleMarker\(\s*\[([-\d.]+), ([-\d.]+)\]")


def village(boundary=True) -> Region:
    return Region(
        code="520399100200",
        name="青山村",
        level=RegionLevel.VILLAGE,
        boundary=square(107.9, 27.2, 0.05) if boundary else None,
    )


def household(**kwargs) -> Household:
    kwargs.setdefault("location", Point(LON, LAT, srid=4326))
    kwargs.setdefault("head_name", "王德福")
    return Household(archive_no="A-1", village=village(), **kwargs)


def tile_urls(script: str) -> list[str]:
    return [json.loads(s) for s in re.findall(r"L\.tileLayer\(\s*" + JS_STRING, script)]


def attributions(script: str) -> list[str]:
    return [json.loads(s) for s in re.findall(r'"attribution": ' + JS_STRING, script)]


def all_output(parts) -> str:
    return parts.header + parts.html + parts.script


def children():
    return [
        Region(
            code="520399100", name="龙溪镇", level="township", boundary=square(107.9, 27.2, 0.1)
        ),
        Region(
            code="520399101", name="白泥镇", level="township", boundary=square(108.0, 27.2, 0.1)
        ),
    ]


def county(boundary=True):
    return Region(
        code="520399",
        name="安居示范县",
        level=RegionLevel.COUNTY,
        boundary=square(107.9, 27.2, 0.2) if boundary else None,
    )


@pytest.mark.parametrize("basemap", ["", "https://tiles.example.org/{z}/{x}/{y}.png", "tianditu"])
def test_no_builder_loads_anything_from_a_cdn(settings, basemap):
    settings.MAP_BASEMAP = basemap
    for parts in [household_location_map(household()), region_map(county(), children())]:
        out = all_output(parts)
        assert re.findall(r'<script src="([^"]+)"', out) == ["/static/vendor/leaflet/leaflet.js"]
        assert re.findall(r'<link rel="stylesheet" href="([^"]+)"', out) == [
            "/static/vendor/leaflet/leaflet.css"
        ]
        for cdn in [
            "cdn.",
            "jsdelivr",
            "cdnjs",
            "jquery",
            "bootstrap",
            "font-awesome",
            "fontawesome",
        ]:
            assert cdn not in out.lower()
        # folium's full-page stylesheet would take over our layout.
        assert "html, body" not in out


def test_without_a_base_map_there_are_no_tiles_and_no_url_at_all(settings):
    settings.MAP_BASEMAP = ""
    parts = household_location_map(household())
    assert "L.tileLayer" not in parts.script
    assert "http" not in all_output(parts)
    assert 'class="anju-map anju-map--plain"' in parts.html
    assert '"attributionControl": false' in parts.script


def test_xyz_base_map_is_one_tile_layer_with_its_attribution(settings):
    settings.MAP_BASEMAP = "https://tiles.example.org/{z}/{x}/{y}.png"
    settings.MAP_BASEMAP_ATTRIBUTION = "© Example contributors"
    parts = household_location_map(household())
    assert tile_urls(parts.script) == ["https://tiles.example.org/{z}/{x}/{y}.png"]
    assert attributions(parts.script) == ["© Example contributors"]
    assert "anju-map--plain" not in parts.html


def test_xyz_base_map_without_attribution_credits_the_tile_host(settings):
    settings.MAP_BASEMAP = "https://tiles.example.org/{z}/{x}/{y}.png"
    settings.MAP_BASEMAP_ATTRIBUTION = ""
    assert attributions(household_location_map(household()).script) == ["tiles.example.org"]


def test_tianditu_is_vector_and_annotation_layers_through_our_proxy(settings):
    # The key stays on the server: the tiles come from our proxy (test_basemap_proxy.py).
    settings.MAP_BASEMAP = "tianditu"
    settings.TIANDITU_KEY = "k123"
    script = region_map(county(), children()).script
    assert tile_urls(script) == [
        "/maps/basemap/tianditu/vec/{z}/{x}/{y}",
        "/maps/basemap/tianditu/cva/{z}/{x}/{y}",
    ]
    assert "k123" not in script
    assert "tianditu.gov.cn" not in script
    assert script.count('"minZoom": 1') == 2
    assert script.count('"maxZoom": 18') == 2
    assert attributions(script) == ["Map data © Tianditu (天地图)"] * 2


def test_tianditu_without_a_key_puts_no_key_parameter(settings):
    settings.MAP_BASEMAP = "tianditu"
    settings.TIANDITU_KEY = ""
    assert "tk=" not in household_location_map(household()).script


def test_points_and_boundaries_are_drawn_at_stored_wgs84_by_default(settings):
    settings.MAP_BASEMAP_CRS = "wgs84"
    script = household_location_map(household()).script
    lat, lon = (float(v) for v in CIRCLE.search(script).groups())
    assert (lon, lat) == (LON, LAT)
    assert "[[[107.9, 27.2], [107.95, 27.2]" in script


def test_gcj02_base_map_shifts_points_and_boundaries_for_display(settings):
    settings.MAP_BASEMAP_CRS = "gcj02"
    script = household_location_map(household()).script
    lat, lon = (float(v) for v in CIRCLE.search(script).groups())
    expected_lon, expected_lat = wgs84_to_gcj02(LON, LAT)
    assert lon == pytest.approx(expected_lon, abs=1e-12)
    assert lat == pytest.approx(expected_lat, abs=1e-12)
    assert (lon, lat) != (LON, LAT)
    corner_lon, corner_lat = wgs84_to_gcj02(107.9, 27.2)
    assert f"[[[{round(corner_lon, 6)}, {round(corner_lat, 6)}]" in script


def test_household_map_shows_the_village_boundary_and_fits_both(settings):
    script = household_location_map(household()).script
    assert script.count("L.geoJson(") == 1
    assert script.count("L.circleMarker(") == 1
    assert re.search(r"fitBounds\(\s*\[\[27\.2, 107\.9\], \[27\.25, 107\.95\]\]", script)


def test_household_map_without_a_village_boundary_centres_on_the_house():
    h = household()
    h.village = village(boundary=False)
    script = household_location_map(h).script
    assert "L.geoJson(" not in script
    assert "fitBounds" not in script
    assert f"center: [{LAT}, {LON}]" in script
    assert '"zoom": 16' in script


def test_household_without_location_has_no_map():
    assert household_location_map(household(location=None)) is None


def test_region_map_draws_the_region_and_each_child():
    script = region_map(county(), children()).script
    assert script.count("L.geoJson(") == 3
    for name in ["安居示范县", "龙溪镇", "白泥镇"]:
        assert name in script


def test_region_map_is_none_without_any_boundary():
    bare = [Region(code="520399100", name="龙溪镇", level="township")]
    assert region_map(county(boundary=False), bare) is None
    assert region_map(county(boundary=False), []) is None


def test_names_cannot_break_out_of_the_tooltip_script():
    h = household(head_name="`+alert(1)+`${x}</script>")
    script = household_location_map(h).script
    assert "`+alert" not in script
    assert "${x}" not in script
    assert "</script>" not in script
    assert tooltip_text("a`b$c\\d<e>") == "a&#96;b&#36;c&#92;d&lt;e&gt;"
