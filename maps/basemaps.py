"""The base map under every server-rendered map, from settings, and display-only datum shifts.

MAP_BASEMAP empty: no tiles at all, the map works offline and shows our own geometries on a
plain background. An XYZ URL template: one tile layer. "tianditu": the official map (vector
base + Chinese annotation), in CGCS2000, so no shift.

Tianditu tiles need a key. A key in a tile URL is a key handed to every browser that opens a
map, so Tianditu tiles go through our own proxy (basemap_views.tianditu_tile): the browser asks
us, we add the key and ask Tianditu. The proxy keeps the tiles it has fetched on disk, so a
township office whose internet drops still sees the places it has looked at before.

We store WGS84. Over a GCJ-02 base map (AMap, Tencent) points drawn at their WGS84
coordinates land a few hundred metres off, so for display only they are shifted to GCJ-02.
"""

import hashlib
import http.client
import logging
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import folium
from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from housing.coords import wgs84_to_gcj02

logger = logging.getLogger(__name__)

TIANDITU = "tianditu"
# Web-Mercator ("_w") WMTS layers: vec = vector base map, cva = its Chinese annotation,
# img = imagery, cia = the annotation drawn over imagery. The proxy fetches only these.
TIANDITU_LAYERS = ("vec", "cva", "img", "cia")
TIANDITU_MIN_ZOOM = 1
TIANDITU_MAX_ZOOM = 18
# Tianditu's hosts t0 ... t7 serve the same tiles; spreading tiles over them spreads the load.
TIANDITU_SUBDOMAINS = 8
# A tile is a few kB to a few tens of kB: anything far larger is not a tile.
MAX_TILE_BYTES = 2 * 1024 * 1024
_CACHE_SUFFIX = ".tile"
# What we pass on as a tile's Content-Type (and write as a cache file's first line).
_IMAGE_TYPE = re.compile(r"image/[a-z0-9.+-]{1,60}")


def has_basemap() -> bool:
    return bool(settings.MAP_BASEMAP.strip())


def shifts_to_gcj02() -> bool:
    return settings.MAP_BASEMAP_CRS.strip().lower() == "gcj02"


def display_lonlat(lon: float, lat: float) -> tuple[float, float]:
    """Where a stored WGS84 point is drawn over the configured base map."""
    if shifts_to_gcj02():
        return wgs84_to_gcj02(lon, lat)
    return lon, lat


def tianditu_proxy_url(layer: str) -> str:
    """Our proxy's URL for one Tianditu layer, with Leaflet's {z}/{x}/{y} left to fill in.

    The route takes integers, so reverse() cannot take the placeholders themselves: reverse
    with zeros and swap the last three segments.
    """
    url = reverse("basemap:tianditu_tile", args=[layer, 0, 0, 0])
    assert url.endswith("/0/0/0"), url
    return url.removesuffix("0/0/0") + "{z}/{x}/{y}"


def tile_layers() -> list[folium.TileLayer]:
    """The configured base map as folium tile layers; none when MAP_BASEMAP is empty."""
    basemap = settings.MAP_BASEMAP.strip()
    if not basemap:
        return []
    if basemap.lower() == TIANDITU:
        # Our own proxy, never Tianditu itself: the key stays on the server.
        attribution = _("Map data © Tianditu (天地图)")
        return [
            folium.TileLayer(
                tiles=tianditu_proxy_url(layer),
                attr=attribution,
                name=f"tianditu_{layer}",
                min_zoom=TIANDITU_MIN_ZOOM,
                max_zoom=TIANDITU_MAX_ZOOM,
                overlay=layer == "cva",
            )
            for layer in ("vec", "cva")
        ]
    # A custom URL must carry an attribution (folium insists, and so do tile licences): when
    # none is configured, name the tile host rather than fail.
    attribution = settings.MAP_BASEMAP_ATTRIBUTION.strip() or urlsplit(basemap).netloc or basemap
    return [folium.TileLayer(tiles=basemap, attr=attribution, name="basemap")]


# --- the Tianditu tile proxy -------------------------------------------------------------


class TileUnavailable(Exception):
    """Tianditu did not answer with a tile, and no copy of it is cached."""


@dataclass(frozen=True)
class Tile:
    content: bytes
    content_type: str

    @property
    def etag(self) -> str:
        # Tianditu sends no validator of its own; the bytes are what the browser keeps.
        return '"' + hashlib.sha256(self.content).hexdigest()[:32] + '"'


def is_tianditu_tile(layer: str, z: int, x: int, y: int) -> bool:
    """A layer we proxy and a tile that exists at that zoom (x and y in 0 .. 2^z - 1)."""
    if layer not in TIANDITU_LAYERS or not TIANDITU_MIN_ZOOM <= z <= TIANDITU_MAX_ZOOM:
        return False
    return 0 <= x < 2**z and 0 <= y < 2**z


def tianditu_key() -> str:
    return settings.TIANDITU_KEY.strip()


def tianditu_tile(layer: str, z: int, x: int, y: int) -> Tile:
    """One Tianditu tile: from the disk cache while fresh, else from Tianditu (then cached).

    A cached tile older than MAP_TILE_CACHE_DAYS is fetched again, but when Tianditu cannot
    be reached the old copy is served: an old map beats no map. Raises TileUnavailable when
    Tianditu fails and nothing is cached. The caller has checked the coordinates and the key.
    """
    path = _cache_path(layer, z, x, y)
    cached, age = _cache_read(path) if path else (None, None)
    if cached is not None and age <= settings.MAP_TILE_CACHE_DAYS * 24 * 60 * 60:
        return cached
    try:
        tile = _fetch(layer, z, x, y)
    except TileUnavailable:
        if cached is not None:
            logger.info("Serving a stale Tianditu tile %s/%s/%s/%s", layer, z, x, y)
            return cached
        raise
    if path:
        _cache_write(path, tile)
    return tile


@sensitive_variables("key", "url")
def _fetch(layer: str, z: int, x: int, y: int) -> Tile:
    """Ask Tianditu for a tile, with the key. Nothing logged or raised here names the URL."""
    key = tianditu_key()
    url = settings.MAP_TIANDITU_URL.format(
        s=(x + y) % TIANDITU_SUBDOMAINS, layer=layer, z=z, x=x, y=y
    )
    url += ("&" if "?" in url else "?") + "tk=" + quote(key, safe="")
    request = urllib.request.Request(url, headers={"User-Agent": "Anju tile proxy"})
    where = f"{layer}/{z}/{x}/{y}"
    try:
        with urllib.request.urlopen(request, timeout=settings.MAP_TILE_TIMEOUT) as response:
            content_type = response.headers.get_content_type()
            content = response.read(MAX_TILE_BYTES + 1)
    except urllib.error.HTTPError as error:
        # str(error) carries only the status, but error.url would carry the key: log the code.
        logger.warning("Tianditu answered HTTP %s for tile %s", error.code, where)
        error.close()
        raise TileUnavailable from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        # URLError, timeouts, refused connections, broken responses, a malformed template.
        logger.warning("Tianditu unreachable for tile %s (%s)", where, type(error).__name__)
        raise TileUnavailable from None
    if not _IMAGE_TYPE.fullmatch(content_type):
        # Tianditu reports a bad or exhausted key as a 200 with an XML or HTML body.
        logger.warning("Tianditu sent %s, not an image, for tile %s", content_type, where)
        raise TileUnavailable
    if not content or len(content) > MAX_TILE_BYTES:
        logger.warning("Tianditu sent %d bytes for tile %s", len(content), where)
        raise TileUnavailable
    return Tile(content=content, content_type=content_type)


# Cache files: the content type on the first line, then the tile's bytes. One file per tile,
# so a tile and its type are replaced together by one rename.


def _cache_path(layer: str, z: int, x: int, y: int) -> Path | None:
    root = str(settings.MAP_TILE_CACHE_DIR or "").strip()
    if not root:
        return None
    return Path(root) / TIANDITU / layer / str(z) / str(x) / f"{y}{_CACHE_SUFFIX}"


def _cache_read(path: Path) -> tuple[Tile | None, float | None]:
    """The cached tile and its age in seconds; (None, None) when absent or unreadable."""
    try:
        with path.open("rb") as handle:
            age = time.time() - os.fstat(handle.fileno()).st_mtime
            data = handle.read(MAX_TILE_BYTES + 200)
    except OSError:
        return None, None
    header, newline, content = data.partition(b"\n")
    content_type = header.decode("ascii", "replace")
    if not newline or not content or not _IMAGE_TYPE.fullmatch(content_type):
        logger.warning("Ignoring a damaged tile cache file %s", path)
        return None, None
    return Tile(content=content, content_type=content_type), age


def _cache_write(path: Path, tile: Tile) -> None:
    """Write to a temporary file beside the target and rename it over: a reader sees the old
    tile or the new one, never half of one. A failure costs only the cache, not the tile."""
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp", delete=False
        ) as handle:
            temporary = handle.name
            handle.write(tile.content_type.encode("ascii") + b"\n" + tile.content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        temporary = None
    except OSError as error:
        logger.warning("Could not cache tile %s (%s)", path, error)
    finally:
        if temporary:
            Path(temporary).unlink(missing_ok=True)
