"""The base map under every server-rendered map, from settings, and display-only datum shifts.

MAP_BASEMAP empty: no tiles at all, the map works offline and shows our own geometries on a
plain background. An XYZ URL template: one tile layer. "tianditu": the official map (vector
base + Chinese annotation), in CGCS2000, so no shift.

We store WGS84. Over a GCJ-02 base map (AMap, Tencent) points drawn at their WGS84
coordinates land a few hundred metres off, so for display only they are shifted to GCJ-02.
"""

from urllib.parse import urlsplit

import folium
from django.conf import settings
from django.utils.translation import gettext as _

from housing.coords import wgs84_to_gcj02

TIANDITU = "tianditu"
# Web-Mercator ("_w") WMTS layers: vec = vector base map, cva = its Chinese annotation.
_TIANDITU_URL = (
    "https://t{s}.tianditu.gov.cn/%(layer)s_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER=%(layer)s&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}"
)


def has_basemap() -> bool:
    return bool(settings.MAP_BASEMAP.strip())


def shifts_to_gcj02() -> bool:
    return settings.MAP_BASEMAP_CRS.strip().lower() == "gcj02"


def display_lonlat(lon: float, lat: float) -> tuple[float, float]:
    """Where a stored WGS84 point is drawn over the configured base map."""
    if shifts_to_gcj02():
        return wgs84_to_gcj02(lon, lat)
    return lon, lat


def tile_layers() -> list[folium.TileLayer]:
    """The configured base map as folium tile layers; none when MAP_BASEMAP is empty."""
    basemap = settings.MAP_BASEMAP.strip()
    if not basemap:
        return []
    if basemap.lower() == TIANDITU:
        # For now the key goes into the tile URL, so every browser that sees a map sees the
        # key. It is added only when set. A tile proxy that keeps the key on the server is
        # the planned replacement (then these URLs point at our own host).
        key = settings.TIANDITU_KEY.strip()
        suffix = f"&tk={key}" if key else ""
        attribution = _("Map data © Tianditu (天地图)")
        return [
            folium.TileLayer(
                tiles=_TIANDITU_URL % {"layer": layer} + suffix,
                attr=attribution,
                name=f"tianditu_{layer}",
                subdomains="01234567",
                max_zoom=18,
                overlay=layer == "cva",
            )
            for layer in ("vec", "cva")
        ]
    # A custom URL must carry an attribution (folium insists, and so do tile licences): when
    # none is configured, name the tile host rather than fail.
    attribution = settings.MAP_BASEMAP_ATTRIBUTION.strip() or urlsplit(basemap).netloc or basemap
    return [folium.TileLayer(tiles=basemap, attr=attribution, name="basemap")]
