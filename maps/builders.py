"""Small folium maps for server-rendered pages, built to run with no internet.

folium's Map loads Leaflet, jQuery, Bootstrap and Font Awesome from CDNs and writes a
full-page stylesheet (html, body {height: 100%}). OfflineMap loads only our vendored
Leaflet and styles only its own div, and the builders use only features that need
nothing but Leaflet (GeoJson, CircleMarker, PolyLine, Tooltip; no Popup, which needs jQuery).
A page puts MapParts.header in <head>, .html where the map goes and .script in a
<script> after it.
"""

import html
import json
from dataclasses import dataclass

import folium
from django.contrib.gis.db.models.functions import Distance
from django.templatetags.static import static
from django.utils import formats, timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from folium.template import Template

from inspections.models import Photo, PhotoAngle, PhotoFlag, PhotoStage
from inspections.selectors import photo_list
from maps.basemaps import display_lonlat, has_basemap, shifts_to_gcj02, tile_layers

HOUSE_COLOUR = "#c0392b"
BOUNDARY_COLOUR = "#2c6e49"
CHILD_COLOUR = "#3a7ca5"
PHOTO_COLOUR = "#3a7ca5"
# Warning orange: apart from the house's red and the boundary's green, and from the blue of
# an ordinary photo point even for most colour-blind readers (far lines are also dashed).
PHOTO_FAR_COLOUR = "#e67e22"
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
            {%- if this.zoom_options %}
            L.control.zoom({{ this.zoom_options|tojson }}).addTo({{ this.get_name() }});
            {%- endif %}
        {% endmacro %}
        """
    )

    def __init__(self, **kwargs):
        plain = not has_basemap()
        if plain:
            # No tiles means no third party to credit; the attribution control would
            # otherwise show only a link to leafletjs.com.
            kwargs.setdefault("attribution_control", False)
        # Leaflet's own zoom control is titled "Zoom in"/"Zoom out" in English whatever the
        # page's language: ours is added by the script above, with the titles translated.
        zoom_control = kwargs.pop("zoom_control", True)
        super().__init__(tiles=None, zoom_control=False, **kwargs)
        if kwargs.get("max_zoom") is not None:
            # folium gives max_zoom to its tile layers only: without a base map, the map
            # itself would zoom in without end.
            self.options["maxZoom"] = kwargs["max_zoom"]
        self.zoom_options = None
        if zoom_control:
            self.zoom_options = {
                "position": zoom_control if isinstance(zoom_control, str) else "topleft",
                "zoomInTitle": _("Zoom in"),
                "zoomOutTitle": _("Zoom out"),
            }
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


class FitBounds:
    """The points a map shows, in the display datum; fit() zooms the map to them."""

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


# --- the household map: the house, its photos' GPS points and how far they are -----------------


@dataclass(frozen=True)
class PhotoPoint:
    """Where one of the household's photos was taken, as its map and table show it.

    ``distance_m`` is geodesic (WGS84 ellipsoid), measured by the database on the stored
    positions, never on the display-shifted ones; None when the house has no location.
    ``far`` is the photo's own evidence flag (inspections.evidence), not a second opinion:
    the map colours what the photo grid explains.
    """

    photo: Photo
    distance_m: float | None
    far: bool

    @property
    def lon(self) -> float:
        return self.photo.gps.x

    @property
    def lat(self) -> float:
        return self.photo.gps.y

    @property
    def stage_label(self) -> str:
        return str(PhotoStage(self.photo.stage).label)

    @property
    def angle_label(self) -> str:
        return str(PhotoAngle(self.photo.angle).label)

    @property
    def taken_text(self) -> str:
        if self.photo.taken_at is None:
            return _("no capture time")
        return timezone.localtime(self.photo.taken_at).strftime("%Y-%m-%d %H:%M")

    @property
    def distance_text(self) -> str:
        return "" if self.distance_m is None else distance_text(self.distance_m)

    @property
    def accuracy_text(self) -> str:
        accuracy = self.photo.gps_accuracy
        if accuracy is None:
            return ""
        return _("± %(metres)s m") % {"metres": formats.number_format(round(accuracy), 0)}

    @property
    def label(self) -> str:
        """One line for the tooltips: stage · angle · time, then the distance to the house."""
        parts = [self.stage_label, self.angle_label, self.taken_text]
        if self.distance_m is not None:
            parts.append(_("%(distance)s from the house") % {"distance": self.distance_text})
        if self.far:
            parts.append(str(PhotoFlag.FAR_FROM_HOUSE.label))
        return " · ".join(parts)


def distance_text(metres: float) -> str:
    """A distance as people read it: whole metres below 1 km, kilometres to 10 m above."""
    if round(metres) < 1000:
        return _("%(metres)s m") % {"metres": formats.number_format(round(metres), 0)}
    # Rounded first: number_format cuts extra decimals off rather than rounding them.
    km = round(metres / 1000, 2)
    return _("%(km)s km") % {"km": formats.number_format(km, 2, force_grouping=True)}


def _is_far(photo: Photo) -> bool:
    return any(flag.get("code") == PhotoFlag.FAR_FROM_HOUSE for flag in photo.flags or [])


def household_photo_points(*, user, household, known_photos=None) -> list[PhotoPoint]:
    """The GPS points of the household's photos that ``user`` may see, newest first.

    One query (besides the user's regions, read once per request and cached on the user).
    ``known_photos``: the household's photos when the caller has read them already (the
    household file has them from inspections.selectors.household_evidence); when none of
    them has GPS there is nothing to place and nothing is queried, so a household without
    photo positions costs its file no query at all.

    Scoped like every photo read (inspections.selectors.photo_list: photos of any of the
    household's houses, in the user's regions). Photos without GPS are left out: the photo
    grid flags them. The distance to the house is computed in SQL the way the "far from the
    house" check computes it (inspections.evidence: Distance on the WGS84 spheroid), so the
    figure here and the one in the flag agree, on PostGIS and SpatiaLite alike.
    """
    if known_photos is not None and all(p.gps is None for p in known_photos):
        return []
    photos = photo_list(user=user, household_id=household.pk).filter(gps__isnull=False)
    if household.location is None:
        return [PhotoPoint(photo=p, distance_m=None, far=_is_far(p)) for p in photos]
    photos = photos.annotate(distance_to_house=Distance("gps", household.location, spheroid=True))
    return [PhotoPoint(photo=p, distance_m=p.distance_to_house.m, far=_is_far(p)) for p in photos]


@dataclass(frozen=True)
class LegendEntry:
    kind: str  # "point", "line" or "area": the swatch's shape
    colour: str
    label: str


@dataclass(frozen=True)
class HouseholdMapParts(MapParts):
    """MapParts plus the legend that explains the photo points (empty without photos)."""

    legend: tuple[LegendEntry, ...] = ()


def _legend(*, house: bool, boundary: bool, points: list[PhotoPoint]) -> tuple[LegendEntry, ...]:
    if not points:
        return ()  # today's map, house and boundary: nothing to explain
    entries = []
    if house:
        entries.append(LegendEntry("point", HOUSE_COLOUR, _("House")))
    if any(not p.far for p in points):
        entries.append(LegendEntry("point", PHOTO_COLOUR, _("Where a photo was taken (GPS)")))
    if any(p.far for p in points):
        entries.append(
            LegendEntry("point", PHOTO_FAR_COLOUR, _("Photo flagged as taken far from the house"))
        )
    if house:
        entries.append(
            LegendEntry(
                "line", PHOTO_COLOUR, _("From photo to house: hover or tap for the distance")
            )
        )
    if boundary:
        entries.append(LegendEntry("area", BOUNDARY_COLOUR, _("Village boundary")))
    return tuple(entries)


def household_location_map(household, photo_points=()) -> HouseholdMapParts | None:
    """The house over its village boundary, with the household's photo GPS points.

    Each photo point (see household_photo_points) gets a line to the house labelled with
    its distance; points flagged far from the house are drawn in a warning colour. All
    positions are shifted for display only (display_lonlat), like the house. None when
    there is nothing to place: no house location and no photo point.
    """
    points = list(photo_points)
    location = household.location
    if location is None and not points:
        return None
    m = OfflineMap()
    bounds = FitBounds()
    village = household.village
    has_boundary = village.boundary is not None and not village.boundary.empty
    if has_boundary:
        geometry = geometry_for_display(village.boundary)
        bounds.add_geojson(geometry)
        _boundary_layer(geometry, village.name, colour=BOUNDARY_COLOUR, fill_opacity=0.08).add_to(m)
    house = None
    if location is not None:
        house = display_lonlat(location.x, location.y)
        bounds.add(*house)
    shown = []
    for point in points:
        lon, lat = display_lonlat(point.lon, point.lat)
        bounds.add(lon, lat)
        shown.append((point, lon, lat))
    # Lines first, then the house, then the photo points: a point is never hidden by a line,
    # and photo points taken at the door stay visible over the (larger) house marker.
    if house is not None:
        for point, lon, lat in shown:
            folium.PolyLine(
                locations=[[lat, lon], [house[1], house[0]]],
                color=PHOTO_FAR_COLOUR if point.far else PHOTO_COLOUR,
                weight=2,
                opacity=0.8,
                dash_array="6 4" if point.far else None,
                tooltip=folium.Tooltip(tooltip_text(point.label), sticky=True),
            ).add_to(m)
        folium.CircleMarker(
            location=[house[1], house[0]],
            radius=8,
            color="#ffffff",
            weight=2,
            fill=True,
            fill_color=HOUSE_COLOUR,
            fill_opacity=1,
            tooltip=folium.Tooltip(tooltip_text(household.head_name)),
        ).add_to(m)
    for point, lon, lat in shown:
        colour = PHOTO_FAR_COLOUR if point.far else PHOTO_COLOUR
        folium.CircleMarker(
            location=[lat, lon],
            radius=6 if point.far else 5,
            color="#ffffff",
            weight=1.5,
            fill=True,
            fill_color=colour,
            fill_opacity=1,
            tooltip=folium.Tooltip(tooltip_text(point.label)),
        ).add_to(m)
    bounds.fit(m)
    parts = render_parts(m)
    return HouseholdMapParts(
        header=parts.header,
        html=parts.html,
        script=parts.script,
        map_id=parts.map_id,
        legend=_legend(house=house is not None, boundary=has_boundary, points=points),
    )


def region_map(region, children) -> MapParts | None:
    """The region's outline and its children's boundaries; None when none of them has one."""
    shaped = [c for c in children if c.boundary is not None and not c.boundary.empty]
    own = region.boundary if region.boundary is not None and not region.boundary.empty else None
    if own is None and not shaped:
        return None
    m = OfflineMap()
    bounds = FitBounds()
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


__all__ = [
    "HouseholdMapParts",
    "MapParts",
    "OfflineMap",
    "PhotoPoint",
    "distance_text",
    "household_location_map",
    "household_photo_points",
    "region_map",
    "shifts_to_gcj02",
]
