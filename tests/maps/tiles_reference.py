"""The map tiles as maps.tiles built them before its SQL was written out (Django's ORM,
a query compiled per request): the reference the SQL's tiles must equal, tile for tile."""

from django.contrib.gis.geos import Polygon
from django.db.models import Count, F, FloatField, Func, Min, Q, QuerySet, Sum
from django.db.models.functions import Floor

from accounts.scoping import scope
from maps.basemaps import shifts_to_gcj02
from maps.filters import MapFilters
from maps.legend import GRADES, STAGES, STATES_OF_STAGE
from maps.models import MapCell, MapPoint
from maps.points import ORIGIN, PYRAMID_MAX_ZOOM

# The tile geometry and projections are shared: what this reference stands for is the way
# the queries were built (the ORM, per request), not the arithmetic around them.
from maps.tiles import (
    CELLS,
    MAX_POINTS,
    POINT_ZOOM,
    PYRAMID_TOP_ZOOM,
    SHIFT_MARGIN,
    Bounds,
    _feature,
    _inside,
    _offset,
    _single,
    display_mercator,
    tile_bounds,
)


def _x():
    return Func(F("point"), function="ST_X", output_field=FloatField())


def _y():
    return Func(F("point"), function="ST_Y", output_field=FloatField())


def points_query(*, user, filters: MapFilters) -> QuerySet:
    """The user's map rows, filtered: what every tile starts from."""
    return filters.apply(scope(MapPoint.objects.all(), user, "region_code"))


def _bbox(bounds: Bounds, dx: float, dy: float, margin: float = 0.0) -> Polygon:
    box = Polygon.from_bbox(
        (
            bounds.minx - dx - margin,
            bounds.miny - dy - margin,
            bounds.maxx - dx + margin,
            bounds.maxy - dy + margin,
        )
    )
    box.srid = 3857
    return box


def _points(qs: QuerySet, bounds: Bounds, dx: float, dy: float) -> list[dict] | None:
    """The tile's households one by one; None when there are more than MAX_POINTS."""
    shift = shifts_to_gcj02()
    rows = list(
        qs.filter(point__isnull=False)  # SpatiaLite's MbrOverlaps(NULL, box) is -1: true
        .filter(point__bboverlaps=_bbox(bounds, dx, dy, SHIFT_MARGIN if shift else 0.0))
        .annotate(px=_x(), py=_y())
        .values_list("household_id", "px", "py", "grade", "case_state")
        .order_by()[: MAX_POINTS + 1]
    )
    if len(rows) > MAX_POINTS:
        return None
    features = []
    for household_id, px, py, grade, state in rows:
        mx, my = display_mercator(px, py) if shift else (px, py)
        if _inside(bounds, mx, my):
            features.append(_feature(mx, my, _single(household_id, grade, state)))
    return features


GRADE_KEYS = [f"g_{c.key}" for c in GRADES]  # a cell row's per-grade counts, legend order
STAGE_KEYS = [f"s_{c.key}" for c in STAGES]  # and per-stage counts


def _by_category(count) -> dict:
    """The per-grade and per-stage counts of a cell, as aggregates: `count(q)` counts the
    rows matching q (Sum of n over MapCell, Count over MapPoint)."""
    aggregates = {
        key: count(Q(grade=_stored_grade(c.key))) for key, c in zip(GRADE_KEYS, GRADES, strict=True)
    }
    aggregates.update(
        {
            key: count(Q(case_state__in=STATES_OF_STAGE[c.key]))
            for key, c in zip(STAGE_KEYS, STAGES, strict=True)
        }
    )
    return aggregates


def _cell_feature(row: dict) -> dict:
    mx, my = display_mercator(row["tx"] / row["total"], row["ty"] / row["total"])
    return _feature(
        mx,
        my,
        {
            "n": row["total"],
            "g": [row[key] or 0 for key in GRADE_KEYS],
            "s": [row[key] or 0 for key in STAGE_KEYS],
        },
    )


def _pyramid(*, user, filters: MapFilters, z: int, x: int, y: int) -> list[dict]:
    """Zoom ≤ PYRAMID_TOP_ZOOM: sum the tile's MapCell rows per cell.

    MapCell level L cuts a zoom-L tile into 8 × 8 cells; zoom z reads level z - 1, which
    cuts its tile into 4 × 4 (zoom 0 reads level 0 in 8 × 8: there is no level -1 grid).
    """
    level = max(z - 1, 0)
    per_tile = 2 ** (level + 3 - z)
    cells = scope(
        MapCell.objects.filter(
            level=level,
            cx__gte=x * per_tile,
            cx__lt=(x + 1) * per_tile,
            cy__gte=y * per_tile,
            cy__lt=(y + 1) * per_tile,
        ),
        user,
        "region_code",
    ).filter(filters.cell_q())
    rows = list(
        cells.values("cx", "cy")
        .annotate(
            total=Sum("n"),
            tx=Sum("sx"),
            ty=Sum("sy"),
            **_by_category(lambda q: Sum("n", filter=q)),
        )
        .filter(total__gt=0)
        .order_by("cy", "cx")
    )
    features = [_cell_feature(row) for row in rows if row["total"] > 1]
    singles = [row for row in rows if row["total"] == 1]
    if singles:
        # Which household a one-house cell holds: one more query, on the grid index.
        k = PYRAMID_MAX_ZOOM - level
        where = Q(pk__in=[])
        for row in singles:
            where |= Q(
                gx__gte=row["cx"] << k,
                gx__lt=(row["cx"] + 1) << k,
                gy__gte=row["cy"] << k,
                gy__lt=(row["cy"] + 1) << k,
            )
        houses = (
            points_query(user=user, filters=filters)
            .filter(where)
            .annotate(px=_x(), py=_y())
            .values_list("household_id", "px", "py", "grade", "case_state")
            .order_by()
        )
        for household_id, px, py, grade, state in houses:
            mx, my = display_mercator(px, py)
            features.append(_feature(mx, my, _single(household_id, grade, state)))
    return features


def _cells(qs: QuerySet, z: int, x: int, y: int) -> list[dict]:
    """Zoom 14: count the tile's MapPoint rows per cell on the fly. A point's cell is its
    cell on the world grid of this zoom (a function of the point alone), so it is in one tile."""
    bounds = tile_bounds(z, x, y)
    cell = 2 * ORIGIN / (2**z * CELLS)
    rows = (
        qs.filter(point__bboverlaps=_bbox(bounds, 0.0, 0.0, 1.0))
        .annotate(
            cx=Floor((_x() + ORIGIN) / cell) - x * CELLS,
            cy=Floor((ORIGIN - _y()) / cell) - y * CELLS,
        )
        .filter(cx__gte=0, cx__lt=CELLS, cy__gte=0, cy__lt=CELLS)
        .values("cx", "cy")
        .annotate(
            total=Count("household_id"),
            tx=Sum(_x()),
            ty=Sum(_y()),
            first=Min("household_id"),
            one_grade=Min("grade"),
            one_state=Min("case_state"),
            **_by_category(lambda q: Count("household_id", filter=q)),
        )
        .order_by("cy", "cx")
    )
    features = []
    for row in rows:
        if row["total"] == 1:
            mx, my = display_mercator(row["tx"], row["ty"])
            features.append(
                _feature(mx, my, _single(row["first"], row["one_grade"], row["one_state"]))
            )
        else:
            features.append(_cell_feature(row))
    return features


def _stored_grade(key: str) -> str:
    return "" if key == "none" else key


def tile(*, user, z: int, x: int, y: int, filters: MapFilters) -> dict:
    """The GeoJSON FeatureCollection of tile z/x/y for this user and these filters."""
    bounds = tile_bounds(z, x, y)
    if z <= PYRAMID_TOP_ZOOM:
        features = _pyramid(user=user, filters=filters, z=z, x=x, y=y)
    else:
        qs = points_query(user=user, filters=filters)
        features = None
        if z >= POINT_ZOOM:
            dx, dy = _offset(bounds) if shifts_to_gcj02() else (0.0, 0.0)
            features = _points(qs, bounds, dx, dy)
        if features is None:
            features = _cells(qs, z, x, y)
    return {"type": "FeatureCollection", "features": features}
