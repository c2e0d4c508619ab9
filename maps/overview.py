"""The county overview page: child regions shaded by a measure, household tiles on top.

The folium map holds only boundaries (a county's townships or a township's villages,
simplified), never households: static/maps/overview.js adds the household layer, which
loads GeoJSON tiles (maps.tiles) for what is on screen, and the regions' name labels. A click
on a region drills down to its own overview; a click on a house opens its popup card.

Regions and houses share one canvas (the map prefers canvas), houses drawn after the regions:
on top, so a click or a tap on a house is the house's even inside a clickable region. (With
the regions as SVG, Leaflet's stylesheet puts every SVG above every canvas, and the region
under a house took its clicks.)
"""

import dataclasses
import html
import math
from dataclasses import dataclass
from urllib.parse import urlencode

import folium
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from housing.selectors import region_breadcrumbs
from maps import legend
from maps.basemaps import display_lonlat
from maps.builders import BOUNDARY_COLOUR, FitBounds, OfflineMap, geometry_for_display, render_parts
from maps.filters import MapFilters
from maps.numbers import count, percent
from maps.selectors import (
    MEASURES,
    RegionFigures,
    measure_value,
    region_figures,
    region_label_points,
)

MEASURE_LABELS = {
    "dilapidated": gettext_lazy("C/D houses"),
    "dilapidated_share": gettext_lazy("Share of appraised houses graded C/D"),
    "cases": gettext_lazy("Renovation cases (open or done)"),
    "completion": gettext_lazy("Completion (completed / cases)"),
}
PERCENT_MEASURES = {"dilapidated_share", "completion"}
# Five classes per measure, light to dark.
RAMPS = {
    "dilapidated": ["#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15"],
    "dilapidated_share": ["#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15"],
    "cases": ["#eff3ff", "#bdd7e7", "#6baed6", "#3182bd", "#08519c"],
    "completion": ["#edf8e9", "#bae4b3", "#74c476", "#31a354", "#006d2c"],
}
NO_DATA = "#d9dee3"
ZERO = "#f7f7f5"


@dataclass(frozen=True)
class LegendClass:
    colour: str
    label: str


def format_value(value, measure: str) -> str:
    return percent(value) if measure in PERCENT_MEASURES else count(value)


def classes(values: list, measure: str) -> tuple[list[float], list[LegendClass]]:
    """Class upper bounds and their legend: fifths of 0–100 % for shares; for counts, up to
    five whole-number ranges from 1 to the largest value, with 0 a class of its own."""
    ramp = RAMPS[measure]
    if measure in PERCENT_MEASURES:
        breaks = [(i + 1) / len(ramp) for i in range(len(ramp))]
        items = [
            LegendClass(
                colour, f"{format_value(i / len(ramp), measure)} – {format_value(b, measure)}"
            )
            for i, (colour, b) in enumerate(zip(ramp, breaks, strict=True))
        ]
        return breaks, items
    top = max((v for v in values if v is not None), default=0)
    breaks: list[float] = [0]
    items = [LegendClass(ZERO, format_value(0, measure))]
    uppers = sorted({math.ceil(top * (i + 1) / len(ramp)) for i in range(len(ramp))} - {0})
    lower = 1
    for i, upper in enumerate(uppers):
        colour = ramp[round(i * (len(ramp) - 1) / max(len(uppers) - 1, 1))]
        label = format_value(upper, measure)
        if upper > lower:
            label = f"{format_value(lower, measure)} – {label}"
        breaks.append(upper)
        items.append(LegendClass(colour, label))
        lower = upper + 1
    return breaks, items


def colour_for(value, items: list[LegendClass], breaks: list[float]) -> str:
    if value is None:
        return NO_DATA
    for limit, item in zip(breaks, items, strict=True):
        if value <= limit:
            return item.colour
    return items[-1].colour


def _tip(figures: RegionFigures, name: str, measure: str) -> str:
    """The region's hover text: name, the measure, the main counts. Escaped here."""
    lines = [
        f"<strong>{html.escape(name)}</strong>",
        html.escape(
            f"{MEASURE_LABELS[measure]}: {format_value(measure_value(figures, measure), measure)}"
        ),
        html.escape(_("Households: %(n)s") % {"n": format_value(figures.households, "cases")}),
        html.escape(
            _("C/D houses: %(n)s") % {"n": format_value(figures.dilapidated, "dilapidated")}
        ),
        html.escape(
            _("Cases: %(n)s, completed %(done)s")
            % {"n": figures.cases, "done": format_value(figures.completion, "completion")}
        ),
    ]
    return "<br>".join(lines)


def _label(name: str, point, geometry: dict) -> dict:
    """A region's name label for the page's script: where it stands ([lat, lon], a point
    inside the region, shifted for display like the boundary) and the region's box
    ([[south, west], [north, east]]), by which the script hides labels too wide for their
    region at the current zoom."""
    lon, lat = display_lonlat(point.x, point.y)
    box = FitBounds()
    box.add_geojson(geometry)
    lons = [p[0] for p in box.points]
    lats = [p[1] for p in box.points]
    return {
        "name": name,
        "at": [round(lat, 6), round(lon, 6)],
        "box": [[min(lats), min(lons)], [max(lats), max(lons)]],
    }


def _query(filters: MapFilters, colour: str, measure: str) -> str:
    """The page's GET parameters, kept across drill-down links."""
    params = filters.query_items()
    if colour != "grade":
        params.append(("colour", colour))
    if measure != MEASURES[0]:
        params.append(("measure", measure))
    return urlencode(params)


def overview_context(*, request, region, form, filters, colour: str, measure: str) -> dict:
    user = request.user
    filters = filters or MapFilters()
    measure = measure if measure in MEASURES else MEASURES[0]
    colour = colour if colour in ("grade", "stage") else "grade"
    total, children = region_figures(user=user, region=region, filters=filters)
    query = _query(filters, colour, measure)
    suffix = f"?{query}" if query else ""
    shaded = [f for f in children if f.region is not None]
    values = [measure_value(f, measure) for f in shaded] or [measure_value(total, measure)]
    breaks, legend_classes = classes(values, measure)

    m = OfflineMap(max_zoom=18, prefer_canvas=True)
    bounds = FitBounds()
    areas = shaded if shaded else [total]
    label_points = region_label_points([f.region for f in areas if f.region is not None])
    features = []
    labels = []
    for figures in areas:
        area = figures.region
        if area is None or area.boundary is None or area.boundary.empty:
            continue
        geometry = geometry_for_display(area.boundary)
        bounds.add_geojson(geometry)
        if area.pk in label_points:
            labels.append(_label(area.name, label_points[area.pk], geometry))
        value = measure_value(figures, measure)
        features.append(
            {
                "type": "Feature",
                "geometry": geometry,
                "properties": {
                    "code": area.code,
                    "fill": colour_for(value, legend_classes, breaks),
                    "tip": _tip(figures, area.name, measure),
                    "url": reverse("maps:overview", args=[area.code]) + suffix if shaded else "",
                },
            }
        )
    if shaded and region.boundary is not None and not region.boundary.empty:
        outline = geometry_for_display(region.boundary)
        bounds.add_geojson(outline)
        folium.GeoJson(
            {"type": "Feature", "properties": {}, "geometry": outline},
            name="outline",
            style_function=lambda _f: {"color": BOUNDARY_COLOUR, "weight": 3, "fill": False},
            interactive=False,
        ).add_to(m)
    if features:
        folium.GeoJson(
            {"type": "FeatureCollection", "features": features},
            name="regions",
            style_function=lambda f: {
                "color": "#ffffff" if f["properties"]["url"] else BOUNDARY_COLOUR,
                "weight": 1.5 if f["properties"]["url"] else 3,
                "fillColor": f["properties"]["fill"],
                "fillOpacity": 0.55 if f["properties"]["url"] else 0.25,
            },
            highlight_function=lambda _f: {"weight": 3, "color": "#1f2933"},
            on_each_feature=folium.JsCode(
                """
                function (feature, layer) {
                    layer.bindTooltip(feature.properties.tip, {sticky: true});
                    if (feature.properties.url) {
                        layer.on("click", function () {
                            window.location = feature.properties.url;
                        });
                    }
                }
                """
            ),
        ).add_to(m)
    if bounds.points:
        bounds.fit(m)
    else:
        m.location = [35.0, 105.0]
        m.options["zoom"] = 4
    parts = render_parts(m)

    tile_url = reverse("maps:tile", args=[0, 0, 0]).replace("/0/0/0.", "/{z}/{x}/{y}.")
    # The tiles show this region's houses only: drilling down narrows the points too.
    filter_query = urlencode(dataclasses.replace(filters, region=region.code).query_items())
    config = {
        "map": parts.map_id,
        "tiles": f"{tile_url}?{filter_query}",
        "popup": reverse("maps:popup", args=[0]).replace("/0/", "/{id}/"),
        "colour": colour,
        "labels": labels,
        "legends": {
            "grade": legend.as_json(legend.GRADES),
            "stage": legend.as_json(legend.STAGES),
        },
        "text": {
            "households": _("households"),
            # "%(label)s: %(value)s" with the language's own colon (Chinese ：).
            "label_value": _("%(label)s: %(value)s"),
            "loading": _("Loading households…"),
            "failed": _("Some households could not be loaded. Move the map to try again."),
        },
    }
    return {
        "region": region,
        "breadcrumbs": region_breadcrumbs(user=user, region=region),
        "form": form,
        "filtered": filters.active or colour != "grade" or measure != MEASURES[0],
        "total": total,
        "children": children,
        "map": parts,
        "config": config,
        "measure": measure,
        "measure_label": MEASURE_LABELS[measure],
        "measures": [(key, MEASURE_LABELS[key]) for key in MEASURES],
        "legend_classes": legend_classes,
        "no_data_colour": NO_DATA,
        "point_legend": legend.legend(colour),
        "colour": colour,
        "query_suffix": suffix,
        "rows": [
            {
                "figures": f,
                "value": format_value(measure_value(f, measure), measure),
                "colour": colour_for(measure_value(f, measure), legend_classes, breaks),
                "completion": format_value(f.completion, "completion"),
            }
            for f in shaded
        ],
        "total_value": format_value(measure_value(total, measure), measure),
        "total_completion": format_value(total.completion, "completion"),
    }
