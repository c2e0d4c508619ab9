"""The officials' maps: the overview page, its tiles and popups, and the progress dashboard.

Thin: parse the GET parameters with MapFilterForm, check scope, call a selector or builder.
"""

import hashlib

from csp.decorators import csp_exempt
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.cache import (
    get_conditional_response,
    patch_cache_control,
    patch_vary_headers,
)
from django.utils.http import quote_etag
from django.views.decorators.http import require_GET

from accounts.scoping import cached_region_codes
from housing.selectors import household_get, region_get, region_roots
from maps import overview
from maps.basemaps import shifts_to_gcj02
from maps.filters import MapFilterForm, TileFilterForm
from maps.selectors import household_popup
from maps.tiles import TileOutOfRange, data_version, tile_json

# Tiles are private (who may see a household depends on who asks). A browser keeps a tile a
# minute, then revalidates: the ETag carries the data version, so an unchanged tile costs a
# 304 and no query beyond the version's. A tile asked for without If-None-Match costs the
# session, the user and the tile's own SQL: scope and version come from the cache.
TILE_MAX_AGE = 60


def data_etag(request, *parts, fresh: bool = False) -> str:
    """An ETag that changes with the map data, the user's scope, the display datum and `parts`.

    `fresh`: the data version read from the database, for deciding a 304; otherwise the
    cached one, which may lag behind (see maps.tiles.data_version), never run ahead.
    """
    codes = cached_region_codes(request.user)
    scope_key = "*" if codes is None else ",".join(codes)
    text = "|".join([scope_key, "gcj02" if shifts_to_gcj02() else "wgs84", *map(str, parts)])
    digest = hashlib.sha1(text.encode()).hexdigest()[:16]
    return quote_etag(f"v{data_version(fresh=fresh)}-{digest}")


def _private(response, etag: str):
    response["ETag"] = etag
    patch_cache_control(response, private=True, max_age=TILE_MAX_AGE)
    patch_vary_headers(response, ["Cookie", "Accept-Language"])
    return response


# A tile is GeoJSON fetched by the map's script, never a document: a Content-Security-Policy
# would govern nothing, and building one was a tenth of a tile request's Python time.
@csp_exempt()
@require_GET
@login_required
def tile_view(request, z: int, x: int, y: int):
    """GET /maps/tiles/<z>/<x>/<y>.geojson?key_group=&grade=&state=&year= — see maps.tiles."""
    form = TileFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(form.error_text(), content_type="text/plain; charset=utf-8")
    filters = form.filters()
    conditional = "If-None-Match" in request.headers
    etag = data_etag(request, "tile", z, x, y, filters.digest(), fresh=conditional)
    if conditional:
        not_modified = get_conditional_response(request, etag=etag)
        if not_modified is not None:
            return _private(not_modified, etag)
    try:
        body = tile_json(user=request.user, z=z, x=x, y=y, filters=filters)
    except TileOutOfRange as exc:
        raise Http404(str(exc)) from exc
    return _private(HttpResponse(body, content_type="application/geo+json"), etag)


@require_GET
@login_required
def popup_view(request, pk: int):
    """The small card a click on a house opens: head, grade, case, latest photo, link."""
    household = household_get(user=request.user, pk=pk)
    return render(
        request, "maps/_popup.html", household_popup(user=request.user, household=household)
    )


@require_GET
@login_required
def overview_index_view(request):
    """The map of the user's own region (the first one, when they have several)."""
    roots = list(region_roots(user=request.user)[:1])
    if not roots:
        return render(request, "maps/no_region.html", status=200)
    return redirect("maps:overview", code=roots[0].code)


@require_GET
@login_required
def overview_view(request, code: str):
    region = region_get(user=request.user, code=code)
    form = MapFilterForm(request.GET or None)
    valid = not form.is_bound or form.is_valid()
    context = overview.overview_context(
        request=request,
        region=region,
        form=form,
        filters=form.filters() if form.is_bound and valid else None,
        colour=form.colour_mode() if form.is_bound and valid else "grade",
        measure=request.GET.get("measure", ""),
    )
    return render(request, "maps/overview.html", context, status=200 if valid else 400)
