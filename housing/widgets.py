"""A map widget for geometry fields that works with no internet.

Django's OSMWidget loads OpenLayers from a CDN and draws OpenStreetMap tiles; villages and
county offices are often offline or behind a firewall, and no page of ours may load from
outside. This widget uses the vendored OpenLayers and Django's own OLMapWidget.js, and
draws, instead of remote tiles, a vector outline of the surrounding area (the household's
village, the region's parent) so the person editing can still see where they are.
"""

import json

from django.contrib.gis.forms.widgets import OpenLayersWidget
from django.contrib.gis.geos import GEOSGeometry
from django.forms.renderers import TemplatesSetting

# The demo county; where an empty map opens when there is no outline to show either.
DEFAULT_LON = 107.9
DEFAULT_LAT = 27.25
DEFAULT_ZOOM = 10

# An outline is context, not data: thinned to about this fraction of its extent, a county
# boundary with tens of thousands of vertices stays a few kilobytes in the page.
CONTEXT_SIMPLIFY_FRACTION = 1 / 2000


_project_templates = TemplatesSetting()


def context_geojson(geometry: GEOSGeometry | None) -> dict | None:
    """The geometry as a GeoJSON dict in WGS84, thinned for display; None when empty."""
    if geometry is None or geometry.empty:
        return None
    geometry = geometry.clone()
    if geometry.srid and geometry.srid != 4326:
        geometry.transform(4326)
    if geometry.num_coords > 1:
        xmin, ymin, xmax, ymax = geometry.extent
        tolerance = max(xmax - xmin, ymax - ymin) * CONTEXT_SIMPLIFY_FRACTION
        if tolerance > 0:
            geometry = geometry.simplify(tolerance, preserve_topology=True)
    return json.loads(geometry.json)


class OfflineMapWidget(OpenLayersWidget):
    """OpenLayers editing on a blank map with an optional outline for context.

    Set `context_geometry` (any GEOS geometry) and `context_label` (text naming it) on the
    widget before rendering to draw that outline; ModelAdmin.get_form does this per object.
    """

    template_name = "gis/anju-openlayers.html"
    default_lon = DEFAULT_LON
    default_lat = DEFAULT_LAT
    default_zoom = DEFAULT_ZOOM

    class Media:
        # extend = False: the parent's Media points at cdn.jsdelivr.net and must not be merged.
        extend = False
        css = {
            "all": (
                "vendor/ol/ol.css",
                "gis/css/ol3.css",
                "gis/css/anju-map-widget.css",
            )
        }
        js = (
            "vendor/ol/ol.js",
            "gis/js/OLMapWidget.js",
            "gis/js/anju-map-widget.js",
        )

    def __init__(self, attrs=None, *, context_geometry=None, context_label=""):
        super().__init__()
        for key in ("default_lon", "default_lat", "default_zoom"):
            self.attrs[key] = getattr(self, key)
        if attrs:
            self.attrs.update(attrs)
        self.context_geometry = context_geometry
        self.context_label = context_label

    def render(self, name, value, attrs=None, renderer=None):
        # The template is in the project's templates/ folder, which the default form
        # renderer does not search (it looks in apps only); TemplatesSetting uses TEMPLATES.
        return super().render(name, value, attrs, renderer=_project_templates)

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["context_geojson"] = context_geojson(self.context_geometry)
        context["context_label"] = self.context_label
        context["context_script_id"] = f"{context.get('id') or name}_context"
        return context
