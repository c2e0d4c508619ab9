"""Small folium maps for server-rendered pages, built to run with no internet.

folium's Map loads Leaflet, jQuery, Bootstrap and Font Awesome from CDNs and writes a
full-page stylesheet (html, body {height: 100%}). OfflineMap loads only our vendored
Leaflet and styles only its own div, and the builders use only features that need
nothing but Leaflet (GeoJson, CircleMarker, Tooltip; no Popup, which needs jQuery).
A page puts MapParts.header in <head>, .html where the map goes and .script in a
<script> after it.
"""

import html
import json
from dataclasses import dataclass

import folium
from django.templatetags.static import static
from django.utils.safestring import SafeString, mark_safe
from folium.template import Template

from maps.basemaps import display_lonlat, has_basemap, shifts_to_gcj02, tile_layers

HOUSE_COLOUR = "#c0392b"
BOUNDARY_COLOUR = "#2c6e49"
CHILD_COLOUR = "#3a7ca5"
# Enough detail for a small page map; keeps a county's township boundaries to a few kB each.
SIMPLIFY_TOLERANCE = 0.0001  # degrees, about 10 m
ZOOM_FOR_POINT_ONLY = 16


@dataclass(frozen=True)
class MapParts:
    header: SafeString  # <link>/<script> for Leaflet and the map's own CSS: in <head>
    html: SafeString  # the map's <div>
    script: SafeString  # JavaScript that draws the map: inside a <script> after the div
    map_id: str


class OfflineMap(folium.Map):
    _template = Template(
        """
        {% macro header(this, kwargs) %}
            <style>#{{ this.get_name() }} { font-size: {{ this.font_size }}; }</style>
        {% endmacro %}

        {% macro html(this, kwargs) %}
            <div class="anju-map{% if this.plain %} anju-map--plain{% endif %}"
                 id={{ this.get_name()|tojson }}></div>
        {% endmacro %}

        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.map(
                {{ this.get_name()|tojson }},
                {
                    center: {{ this.location|tojson }},
                    crs: L.CRS.{{ this.crs }},
                    ...{{ this.options|tojavascript }}
                }
            );
        {% endmacro %}
        """
    )

    def __init__(self, **kwargs):
        plain = not has_basemap()
        if plain:
            # No tiles means no third party to credit; the attribution control would
            # otherwise show only a link to leafletjs.com.
            kwargs.setdefault("attribution_control", False)
        super().__init__(tiles=None, **kwargs)
        self.plain = plain
        # Instance attributes: static() depends on settings, and folium mutates these lists.
        self.default_js = [("leaflet", static("vendor/leaflet/leaflet.js"))]
        self.default_css = [("leaflet_css", static("vendor/leaflet/leaflet.css"))]
        for layer in tile_layers():
            layer.add_to(self)


def tooltip_text(text: str) -> str:
    """Text safe inside folium's Tooltip, which pastes it into a JavaScript `template` string."""
    return html.escape(str(text)).replace("\\", "&#92;").replace("`", "&#96;").replace("$", "&#36;")


def _shift_coords(coords):
    """Apply the display shift to every [lon, lat] of a GeoJSON coordinates array."""
    if coords and isinstance(coords[0], int | float):
        lon, lat = display_lonlat(coords[0], coords[1])
        return [round(lon, 6), round(lat, 6)]
    return [_shift_coords(c) for c in coords]


def _flatten(coords):
    if coords and isinstance(coords[0], int | float):
        yield coords
    else:
        for c in coords:
            yield from _flatten(c)


def geometry_for_display(geometry) -> dict:
    """A GEOS geometry as a GeoJSON dict in the base map's datum, lightly simplified."""
    simplified = geometry.simplify(SIMPLIFY_TOLERANCE, preserve_topology=True)
    if simplified.empty:
        simplified = geometry
    data = json.loads(simplified.geojson)
    data["coordinates"] = _shift_coords(data["coordinates"])
    return data


class _Bounds:
    def __init__(self):
        self.points: list[tuple[float, float]] = []  # (lon, lat), display datum

    def add_geojson(self, data: dict):
        self.points.extend((c[0], c[1]) for c in _flatten(data["coordinates"]))

    def add(self, lon: float, lat: float):
        self.points.append((lon, lat))

    def fit(self, m: folium.Map):
        lons = [p[0] for p in self.points]
        lats = [p[1] for p in self.points]
        south_west, north_east = [min(lats), min(lons)], [max(lats), max(lons)]
        if south_west == north_east:
            m.location = south_west
            m.options["zoom"] = ZOOM_FOR_POINT_ONLY
        else:
            m.location = [(south_west[0] + north_east[0]) / 2, (south_west[1] + north_east[1]) / 2]
            m.fit_bounds([south_west, north_east], padding=(12, 12))


def _boundary_layer(geometry, name: str, *, colour: str, fill_opacity: float) -> folium.GeoJson:
    style = {"color": colour, "weight": 2, "fillColor": colour, "fillOpacity": fill_opacity}
    if not fill_opacity:
        # An unfilled outline must not catch taps meant for the shapes inside it.
        style["fill"] = False
    return folium.GeoJson(
        {"type": "Feature", "properties": {}, "geometry": geometry},
        style_function=lambda _feature: style,
        tooltip=folium.Tooltip(tooltip_text(name)),
    )


def render_parts(m: OfflineMap) -> MapParts:
    figure = m.get_root()
    # folium's figure opens with a <meta http-equiv>; our page already has its own <head>.
    figure.header._children.pop("meta_http", None)
    figure.render()  # lets every element add its pieces to the figure's header/html/script
    # Safe: folium writes data as escaped JSON, and names go through tooltip_text().
    return MapParts(
        header=mark_safe(figure.header.render()),
        html=mark_safe(figure.html.render()),
        script=mark_safe(figure.script.render()),
        map_id=m.get_name(),
    )


def household_location_map(household) -> MapParts | None:
    """The house point over its village boundary; None when the household has no location."""
    if household.location is None:
        return None
    m = OfflineMap()
    bounds = _Bounds()
    village = household.village
    if village.boundary is not None and not village.boundary.empty:
        geometry = geometry_for_display(village.boundary)
        bounds.add_geojson(geometry)
        _boundary_layer(geometry, village.name, colour=BOUNDARY_COLOUR, fill_opacity=0.08).add_to(m)
    lon, lat = display_lonlat(household.location.x, household.location.y)
    bounds.add(lon, lat)
    folium.CircleMarker(
        location=[lat, lon],
        radius=8,
        color="#ffffff",
        weight=2,
        fill=True,
        fill_color=HOUSE_COLOUR,
        fill_opacity=1,
        tooltip=folium.Tooltip(tooltip_text(household.head_name)),
    ).add_to(m)
    bounds.fit(m)
    return render_parts(m)


def region_map(region, children) -> MapParts | None:
    """The region's outline and its children's boundaries; None when none of them has one."""
    shaped = [c for c in children if c.boundary is not None and not c.boundary.empty]
    own = region.boundary if region.boundary is not None and not region.boundary.empty else None
    if own is None and not shaped:
        return None
    m = OfflineMap()
    bounds = _Bounds()
    if own is not None:
        geometry = geometry_for_display(own)
        bounds.add_geojson(geometry)
        _boundary_layer(geometry, region.name, colour=BOUNDARY_COLOUR, fill_opacity=0).add_to(m)
    for child in shaped:
        geometry = geometry_for_display(child.boundary)
        bounds.add_geojson(geometry)
        _boundary_layer(geometry, child.name, colour=CHILD_COLOUR, fill_opacity=0.12).add_to(m)
    bounds.fit(m)
    return render_parts(m)


__all__ = ["MapParts", "OfflineMap", "household_location_map", "region_map", "shifts_to_gcj02"]
