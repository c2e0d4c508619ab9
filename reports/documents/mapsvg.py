"""The household map of a PDF, drawn on the server as inline SVG.

A printed file cannot load tiles, and a base map from an online provider would have to be
fetched (and, in China, shifted to GCJ-02). So the map draws only what we store, in WGS84:
the village boundary, the house, where each photo was taken and a line from each photo to
the house. Two panels:

- the overview: the whole village with the house and every photo point (a photo taken two
  kilometres away shows where it was taken);
- the detail: the ground around the house, where the photo points are told apart and
  numbered like the photos in the file; a point beyond the panel is drawn at its edge
  with its distance.

The projection is equirectangular around the panel's centre (x = Δlon · cos φ₀ · R,
y = Δlat · R): over a village, a few kilometres, its error is far below a pixel. Each panel
has a scale bar and a north arrow (north is up).
"""

import html
import math
from dataclasses import dataclass

from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from maps.builders import BOUNDARY_COLOUR, HOUSE_COLOUR, PHOTO_COLOUR, PHOTO_FAR_COLOUR

EARTH_RADIUS_M = 6_371_008.8
WIDTH, HEIGHT = 400, 300  # the SVG's user units; the page scales it to the column
PAD = 18
# The detail panel shows the ground this far around the house at least, and at most
# DETAIL_MAX_M: a point farther off is drawn on the panel's edge with its distance.
DETAIL_MIN_M = 25.0
DETAIL_MAX_M = 300.0
# Photo points closer than this on the panel (SVG units) share one label ("3, 4").
LABEL_MERGE = 7.0
FONT = "Noto Sans CJK SC, sans-serif"


@dataclass(frozen=True)
class MapPoint:
    """A photo's GPS position as the map draws it; `number` is printed under the photo."""

    number: int
    lon: float
    lat: float
    far: bool
    distance_m: float | None


@dataclass(frozen=True)
class HouseholdMap:
    overview: SafeString
    detail: SafeString | None  # None when there is no house position to centre on


class _Projection:
    """Equirectangular metres around (lon0, lat0), fitted to the panel."""

    def __init__(self, lon0: float, lat0: float, extent_m: tuple[float, float, float, float]):
        self.lon0, self.lat0 = lon0, lat0
        self.k = math.cos(math.radians(lat0))
        xmin, ymin, xmax, ymax = extent_m
        span_x, span_y = max(xmax - xmin, 1.0), max(ymax - ymin, 1.0)
        self.scale = min((WIDTH - 2 * PAD) / span_x, (HEIGHT - 2 * PAD) / span_y)  # px per m
        self.cx, self.cy = (xmin + xmax) / 2, (ymin + ymax) / 2

    def metres(self, lon: float, lat: float) -> tuple[float, float]:
        return (
            math.radians(lon - self.lon0) * self.k * EARTH_RADIUS_M,
            math.radians(lat - self.lat0) * EARTH_RADIUS_M,
        )

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        x, y = self.metres(lon, lat)
        return (
            WIDTH / 2 + (x - self.cx) * self.scale,
            HEIGHT / 2 - (y - self.cy) * self.scale,
        )


def _extent(pro: _Projection, lonlats) -> tuple[float, float, float, float]:
    xs, ys = zip(*(pro.metres(lon, lat) for lon, lat in lonlats), strict=True)
    return min(xs), min(ys), max(xs), max(ys)


def _rings(boundary, tolerance_deg: float) -> list[list[tuple[float, float]]]:
    if boundary is None or boundary.empty:
        return []
    simple = boundary.simplify(tolerance_deg, preserve_topology=True)
    polygons = [simple] if simple.geom_type == "Polygon" else list(simple)
    return [list(ring.coords) for polygon in polygons for ring in polygon]


def _path(pro: _Projection, rings) -> str:
    parts = []
    for ring in rings:
        points = [pro.xy(lon, lat) for lon, lat in ring]
        parts.append(
            "M" + " L".join(f"{x:.1f} {y:.1f}" for x, y in points) + " Z" if points else ""
        )
    return " ".join(parts)


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def length_text(metres: float) -> str:
    """A scale bar's length: whole metres, or kilometres from 1 km."""
    if metres < 1000:
        return _("%(metres)s m") % {"metres": f"{metres:g}"}
    return _("%(km)s km") % {"km": f"{metres / 1000:g}"}


def _scale_bar(pro: _Projection) -> str:
    """A bar of a round length (1, 2 or 5 × 10ⁿ m) about a quarter of the panel wide."""
    target = (WIDTH / 4) / pro.scale
    base = 10 ** math.floor(math.log10(target))
    length = max(m * base for m in (1, 2, 5) if m * base <= target)
    px = length * pro.scale
    x0, y0 = PAD / 2 + 2, HEIGHT - PAD / 2 - 2
    return (
        f'<g class="scale"><rect x="{x0 - 3}" y="{y0 - 14}" width="{px + 6:.1f}" height="18" '
        'fill="#ffffff" fill-opacity="0.8"/>'
        f'<path d="M{x0} {y0 - 4} V{y0} H{x0 + px:.1f} V{y0 - 4}" fill="none" stroke="#222" '
        'stroke-width="1.4"/>'
        f'<text x="{x0 + px / 2:.1f}" y="{y0 - 5}" text-anchor="middle" font-size="9" '
        f'font-family="{FONT}" fill="#222">{_esc(length_text(length))}</text></g>'
    )


def _north_arrow() -> str:
    x, y = WIDTH - PAD / 2 - 8, PAD / 2 + 2
    return (
        f'<g class="north"><path d="M{x} {y} L{x + 6} {y + 16} L{x} {y + 12} L{x - 6} {y + 16} Z" '
        'fill="#222"/>'
        f'<text x="{x}" y="{y + 27}" text-anchor="middle" font-size="9" font-weight="bold" '
        f'font-family="{FONT}" fill="#222">{_esc(pgettext("north arrow", "N"))}</text></g>'
    )


def _house_mark(x: float, y: float) -> str:
    return (
        f'<rect x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" fill="{HOUSE_COLOUR}" '
        'stroke="#ffffff" stroke-width="1.2"/>'
    )


def _point_mark(x: float, y: float, far: bool, r: float = 3.6) -> str:
    colour = PHOTO_FAR_COLOUR if far else PHOTO_COLOUR
    return (
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{colour}" stroke="#ffffff" '
        'stroke-width="1"/>'
    )


def _label(x: float, y: float, text: str, colour: str = "#111") -> str:
    # A white halo keeps the number readable over lines and the boundary.
    common = f'x="{x:.1f}" y="{y:.1f}" font-size="8.5" font-family="{FONT}" font-weight="bold"'
    return (
        f'<text {common} stroke="#ffffff" stroke-width="2.4" fill="#ffffff">{_esc(text)}</text>'
        f'<text {common} fill="{colour}">{_esc(text)}</text>'
    )


def _svg(body: list[str], title: str) -> SafeString:
    return mark_safe(  # every value in `body` went through _esc or is a number we formatted
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{_esc(title)}">'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#f8faf7"/>' + "".join(body) + "</svg>"
    )


def _overview(house, boundary, points: list[MapPoint]) -> SafeString:
    lonlats = [(p.lon, p.lat) for p in points]
    if house is not None:
        lonlats.append((house.x, house.y))
    if boundary is not None and not boundary.empty:
        xmin, ymin, xmax, ymax = boundary.extent
        lonlats += [(xmin, ymin), (xmax, ymax)]
    lon0 = sum(lon for lon, _lat in lonlats) / len(lonlats)
    lat0 = sum(lat for _lon, lat in lonlats) / len(lonlats)
    pro = _Projection(lon0, lat0, (0, 0, 0, 0))
    xmin, ymin, xmax, ymax = _extent(pro, lonlats)
    # At least 100 m across, so a lone house is not drawn at an absurd scale.
    grow = max(0.0, 100 - (xmax - xmin), 100 - (ymax - ymin)) / 2
    pro = _Projection(lon0, lat0, (xmin - grow, ymin - grow, xmax + grow, ymax + grow))
    body = []
    rings = _rings(boundary, tolerance_deg=1 / (pro.scale * 111_000))
    if rings:
        body.append(
            f'<path d="{_path(pro, rings)}" fill="{BOUNDARY_COLOUR}" fill-opacity="0.10" '
            f'stroke="{BOUNDARY_COLOUR}" stroke-width="1.4" fill-rule="evenodd"/>'
        )
    if house is not None:
        hx, hy = pro.xy(house.x, house.y)
        for p in points:
            if p.far:
                px, py = pro.xy(p.lon, p.lat)
                body.append(
                    f'<line x1="{px:.1f}" y1="{py:.1f}" x2="{hx:.1f}" y2="{hy:.1f}" '
                    f'stroke="{PHOTO_FAR_COLOUR}" stroke-width="1" stroke-dasharray="4 3"/>'
                )
    for p in points:
        body.append(_point_mark(*pro.xy(p.lon, p.lat), p.far, r=3))
    for p in points:
        if p.far:
            px, py = pro.xy(p.lon, p.lat)
            body.append(_label(px + 5, py - 4, str(p.number), PHOTO_FAR_COLOUR))
    if house is not None:
        body.append(_house_mark(*pro.xy(house.x, house.y)))
    body += [_scale_bar(pro), _north_arrow()]
    return _svg(body, _("The village, the house and where the photos were taken"))


def _edge_point(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float]:
    """Where the segment from (x0, y0) (inside the panel) to (x1, y1) leaves the panel."""
    t = 1.0
    for lo, hi, a, b in ((PAD / 2, WIDTH - PAD / 2, x0, x1), (PAD / 2, HEIGHT - PAD / 2, y0, y1)):
        if b < lo:
            t = min(t, (lo - a) / (b - a))
        elif b > hi:
            t = min(t, (hi - a) / (b - a))
    return x0 + (x1 - x0) * t, y0 + (y1 - y0) * t


def _detail(house, boundary, points: list[MapPoint], distance_text) -> SafeString:
    pro = _Projection(house.x, house.y, (0, 0, 0, 0))
    near = [p for p in points if p.distance_m is None or p.distance_m <= DETAIL_MAX_M]
    reach = max([DETAIL_MIN_M] + [max(map(abs, pro.metres(p.lon, p.lat))) for p in near])
    reach *= 1.15
    pro = _Projection(house.x, house.y, (-reach, -reach, reach, reach))
    hx, hy = pro.xy(house.x, house.y)
    body = [
        f'<clipPath id="detail-clip"><rect x="{PAD / 2}" y="{PAD / 2}" width="{WIDTH - PAD}" '
        f'height="{HEIGHT - PAD}"/></clipPath>'
    ]
    rings = _rings(boundary, tolerance_deg=0.5 / (pro.scale * 111_000))
    if rings:
        body.append(
            f'<path d="{_path(pro, rings)}" fill="none" stroke="{BOUNDARY_COLOUR}" '
            'stroke-width="1.4" clip-path="url(#detail-clip)"/>'
        )
    placed = []  # (x, y, numbers, far)
    for p in points:
        px, py = pro.xy(p.lon, p.lat)
        outside = p not in near
        ex, ey = _edge_point(hx, hy, px, py) if outside else (px, py)
        colour = PHOTO_FAR_COLOUR if p.far else PHOTO_COLOUR
        dash = ' stroke-dasharray="4 3"' if p.far or outside else ""
        body.append(
            f'<line x1="{ex:.1f}" y1="{ey:.1f}" x2="{hx:.1f}" y2="{hy:.1f}" stroke="{colour}" '
            f'stroke-width="1"{dash}/>'
        )
        if outside:
            text = f"{p.number} → {distance_text(p.distance_m)}"
            anchor = "end" if ex > WIDTH / 2 else "start"
            ly = min(max(ey + (12 if ey < HEIGHT / 2 else -6), PAD), HEIGHT - PAD / 2)
            body.append(_point_mark(ex, ey, p.far))
            body.append(
                _label(ex, ly, text, colour).replace("<text ", f'<text text-anchor="{anchor}" ')
            )
            continue
        for item in placed:
            if math.hypot(item[0] - px, item[1] - py) < LABEL_MERGE and item[3] == p.far:
                item[2].append(p.number)
                break
        else:
            placed.append((px, py, [p.number], p.far))
    for x, y, _numbers, far in placed:
        body.append(_point_mark(x, y, far))
    for x, y, numbers, far in placed:
        body.append(
            _label(
                x + 5, y - 4, ", ".join(map(str, numbers)), PHOTO_FAR_COLOUR if far else "#1b3d57"
            )
        )
    body.append(_house_mark(hx, hy))
    body += [_scale_bar(pro), _north_arrow()]
    return _svg(body, _("Around the house: where each photo was taken"))


def household_map(*, house, boundary, points: list[MapPoint], distance_text) -> HouseholdMap | None:
    """The two panels for a household, or None when there is nothing to place.

    house: the household's location (a WGS84 Point) or None; boundary: its village's
    MultiPolygon or None; points: its photos' positions, numbered; distance_text: how a
    distance in metres is worded (maps.builders.distance_text).
    """
    if house is None and not points:
        return None
    overview = _overview(house, boundary, points)
    detail = _detail(house, boundary, points, distance_text) if house is not None else None
    return HouseholdMap(overview=overview, detail=detail)
