"""The Tianditu tile proxy: the browser asks us for a tile, we ask Tianditu with the key.

Thin: check the tile's coordinates and that a key is set, get the tile through
maps.basemaps (disk cache first), answer with the bytes or a short plain-text error. The key
is added in maps.basemaps and appears in no response, header or log line.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from maps import basemaps

# Base maps change rarely; a browser may keep a tile for a day. Private: only signed-in
# users may fetch tiles, so no shared cache should hand them to anyone else.
TILE_MAX_AGE = 24 * 60 * 60


@require_safe
@login_required
def tianditu_tile(request, layer: str, z: int, x: int, y: int):
    """One tile of a Tianditu layer (vec, cva, img, cia) at zoom 1-18.

    Tianditu not the configured base map (MAP_BASEMAP), a layer we do not proxy or a tile
    outside the zoom's grid: 404. No TIANDITU_KEY: 503.
    Tianditu failing or slower than MAP_TILE_TIMEOUT, with no cached copy: 502.
    """
    if settings.MAP_BASEMAP.strip().lower() != basemaps.TIANDITU:
        # Only the configured base map spends the key's quota.
        raise Http404("Tianditu is not the configured base map.")
    if not basemaps.is_tianditu_tile(layer, z, x, y):
        raise Http404(f"No Tianditu tile {layer}/{z}/{x}/{y}.")
    if not basemaps.tianditu_key():
        return _plain_error(
            _("TIANDITU_KEY is not set: the Tianditu base map is unavailable."), status=503
        )
    try:
        tile = basemaps.tianditu_tile(layer, z, x, y)
    except basemaps.TileUnavailable:
        return _plain_error(_("The base map tile could not be fetched from Tianditu."), status=502)
    not_modified = get_conditional_response(request, etag=tile.etag)
    if not_modified is not None:
        _protect(not_modified, tile.etag)
        return not_modified
    response = HttpResponse(tile.content, content_type=tile.content_type)
    _protect(response, tile.etag)
    return response


def _protect(response, etag: str) -> None:
    response["ETag"] = etag
    response["X-Content-Type-Options"] = "nosniff"
    patch_cache_control(response, private=True, max_age=TILE_MAX_AGE)


def _plain_error(message: str, status: int) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    # An outage passes: the browser should ask again next time, not keep the error.
    patch_cache_control(response, no_store=True)
    return response
