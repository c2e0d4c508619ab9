"""Household points as GeoJSON tiles: cells of counts at low zoom, single houses close up.

A tile is the standard XYZ (Web Mercator) tile z/x/y. The HTML never holds households: the
page asks for the tiles it shows, and each tile is one or two SQL queries, scoped to the
user's regions and filtered.

- Zoom 0–13: the tile's 4 × 4 cells (64 px each) from MapCell, the pre-counted pyramid:
  counts by grade and by case stage, mean position. A few thousand rows, whatever the
  county's size.
- Zoom 14: the same cells counted from MapPoint on the fly (a tile holds at most a few
  thousand households there; the GiST index finds them).
- Zoom 15 and up: the households themselves (id, grade, stage), unless there are more than
  MAX_POINTS, when it falls back to cells.
A cell with one household comes back as that household, clickable. Cells are aligned to the
tile grid, so a household is counted in exactly one cell of one tile.

Over a GCJ-02 base map points are drawn shifted (display only, maps.basemaps): each
position (a house, or a cell's mean) is shifted exactly. Cells are cut on the stored
coordinates; close up, houses are assigned to tiles by their shifted position, so a house
is drawn where the base map has it and still in one tile only.

Each query is SQL text written once per shape, that is per kind of query, database, number
of region codes in the user's scope and which filters are set (functools.cache), and run with
the request's values as parameters (accounts.statements.fetch_all: on PostgreSQL a prepared
statement, parsed and planned once per connection): a request pays for no query compilation.
The text is the same on PostGIS and SpatiaLite but for the bounding-box test.
Scope comes from accounts.scoping.cached_region_codes (no query when the cache is warm).
"""

import functools
import json
import math
from dataclasses import dataclass

from django.contrib.gis.geos import Polygon
from django.core.cache import cache
from django.db import connection

from accounts.scoping import cached_region_codes
from accounts.statements import fetch_all
from housing.coords import wgs84_to_gcj02
from housing.models import KeyGroup
from maps import points
from maps.basemaps import shifts_to_gcj02
from maps.filters import NONE, MapFilters
from maps.legend import GRADE_KEY, GRADES, STAGE_OF_STATE, STAGES, STATES_OF_STAGE
from maps.models import MapCell, MapPoint
from maps.points import ORIGIN, PYRAMID_MAX_ZOOM

MAX_ZOOM = 20
POINT_ZOOM = 15
CELLS = 4  # cells across a tile: 64-pixel cells, room for a bubble each
# Zooms 1..PYRAMID_TOP_ZOOM read MapCell level z - 1, whose 32-pixel cells are 64 pixels at z.
PYRAMID_TOP_ZOOM = PYRAMID_MAX_ZOOM + 1
MAX_POINTS = 3000
# How far beyond the tile exact shifting may move a house back into it (GCJ-02 offsets
# differ from the tile-centre offset by far less than this inside one close-up tile).
SHIFT_MARGIN = 50.0  # metres
# The map data version, kept in the cache for the ETag of a tile asked for without
# If-None-Match. It may lag behind the database for this long (a bump in this or another
# process): such a tile carries an older version than its data, and the browser fetches it
# once more than needed. A 304 is only ever decided on the version read from the database
# (data_version(fresh=True)), so a lagging version never keeps a changed tile.
VERSION_KEY = "anju:maps:data-version"
VERSION_SECONDS = 60


class TileOutOfRange(ValueError):
    pass


@dataclass(frozen=True)
class Bounds:
    minx: float
    miny: float
    maxx: float
    maxy: float

    @property
    def size(self) -> float:
        return self.maxx - self.minx


def tile_bounds(z: int, x: int, y: int) -> Bounds:
    if not 0 <= z <= MAX_ZOOM:
        raise TileOutOfRange(f"zoom {z} is outside 0–{MAX_ZOOM}")
    n = 2**z
    if not (0 <= x < n and 0 <= y < n):
        raise TileOutOfRange(f"tile {x}/{y} is outside 0–{n - 1} at zoom {z}")
    size = 2 * ORIGIN / n
    # Each edge from its own index: a tile's east edge is, to the last bit, its neighbour's
    # west edge.
    return Bounds(
        -ORIGIN + x * size, ORIGIN - (y + 1) * size, -ORIGIN + (x + 1) * size, ORIGIN - y * size
    )


def to_lonlat(mx: float, my: float) -> tuple[float, float]:
    lon = mx / ORIGIN * 180.0
    lat = math.degrees(2 * math.atan(math.exp(my / 6378137.0)) - math.pi / 2)
    return lon, lat


def to_mercator(lon: float, lat: float) -> tuple[float, float]:
    mx = lon * ORIGIN / 180.0
    my = math.log(math.tan((90.0 + lat) * math.pi / 360.0)) * 6378137.0
    return mx, my


def display_mercator(mx: float, my: float) -> tuple[float, float]:
    """Where a stored point (EPSG:3857 of WGS84) is drawn: shifted over a GCJ-02 base map."""
    if not shifts_to_gcj02():
        return mx, my
    return to_mercator(*wgs84_to_gcj02(*to_lonlat(mx, my)))


def _offset(bounds: Bounds) -> tuple[float, float]:
    cx, cy = bounds.minx + bounds.size / 2, bounds.miny + bounds.size / 2
    sx, sy = display_mercator(cx, cy)
    return sx - cx, sy - cy


def data_version(*, fresh: bool = False) -> int:
    """The map data version (maps.points.version()), from the cache unless `fresh`."""
    if not fresh:
        version = cache.get(VERSION_KEY)
        if version is not None:
            return version
    version = points.version()
    cache.set(VERSION_KEY, version, VERSION_SECONDS)
    return version


# --- the SQL, one text per shape ---------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """What a query's text depends on: not the values, only how many and which are set."""

    vendor: str
    codes: int  # region codes in the user's scope; -1: unrestricted (an administrator)
    key_group: bool
    grades: int
    states: int
    year: bool
    region: bool


def _shape(codes: list[str] | None, filters: MapFilters) -> Shape:
    return Shape(
        vendor=connection.vendor,
        codes=-1 if codes is None else len(codes),
        key_group=bool(filters.key_group),
        grades=len(filters.grades),
        states=len(filters.states),
        year=filters.year is not None,
        region=bool(filters.region),
    )


def _like(code: str) -> str:
    """A LIKE pattern for the codes starting with `code` (escaped as Django escapes it)."""
    return code.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _marks(n: int) -> str:
    return ", ".join(["%s"] * n)


LIKE = "region_code LIKE %s ESCAPE '\\'"


def _where(shape: Shape, key_group_column: str) -> list[str]:
    """Scope and filters, on either table (both name region code, grade, state, year alike);
    the parameters in the same order come from _where_params."""
    where = []
    if shape.codes >= 0:
        where.append("(" + " OR ".join([LIKE] * shape.codes) + ")")
    if shape.region:
        where.append(LIKE)
    if shape.key_group:
        where.append(
            f"{key_group_column} IN (SELECT id FROM {KeyGroup._meta.db_table} WHERE code = %s)"
        )
    if shape.grades:
        where.append(f"grade IN ({_marks(shape.grades)})")
    if shape.states:
        where.append(f"case_state IN ({_marks(shape.states)})")
    if shape.year:
        where.append("funding_year = %s")
    return where


def _where_params(codes: list[str] | None, filters: MapFilters) -> list:
    params: list = [_like(code) for code in codes or ()]
    if filters.region:
        params.append(_like(filters.region))
    if filters.key_group:
        params.append(filters.key_group)
    params += ["" if g == NONE else g for g in filters.grades]
    params += ["" if s == NONE else s for s in filters.states]
    if filters.year is not None:
        params.append(filters.year)
    return params


def _categories(count: str) -> str:
    """Per-grade then per-stage counts of a cell, legend order: `count` is the aggregate
    (SUM(n) over MapCell, COUNT(household_id) over MapPoint)."""
    parts = [f"{count} FILTER (WHERE grade = {_literal(_stored_grade(c.key))})" for c in GRADES]
    parts += [
        f"{count} FILTER (WHERE case_state IN ({', '.join(map(_literal, STATES_OF_STAGE[c.key]))}))"
        for c in STAGES
    ]
    return ", ".join(parts)


def _bbox_sql(shape: Shape) -> str:
    """The point's bounding box overlaps the box: the GiST index on PostGIS."""
    if shape.vendor == "postgresql":
        return "point && ST_MakeEnvelope(%s, %s, %s, %s, 3857)"
    # SpatiaLite's MbrOverlaps(NULL, box) is -1, true: callers that need it exclude NULL.
    return "MbrOverlaps(point, GeomFromText(%s, 3857))"


def _bbox_params(shape: Shape, bounds: Bounds, dx: float, dy: float, margin: float) -> list:
    box = (
        bounds.minx - dx - margin,
        bounds.miny - dy - margin,
        bounds.maxx - dx + margin,
        bounds.maxy - dy + margin,
    )
    if shape.vendor == "postgresql":
        return list(box)
    # The very text Django sends for a Polygon, so that edges fall as they always did.
    return [Polygon.from_bbox(box).wkt]


@functools.cache
def _pyramid_sql(shape: Shape) -> str:
    where = " AND ".join(
        [
            "level = %s",
            "cx >= %s",
            "cx < %s",
            "cy >= %s",
            "cy < %s",
            *_where(shape, "key_group_ref"),
        ]
    )
    return (
        f"SELECT cx, cy, SUM(n), SUM(sx), SUM(sy), {_categories('SUM(n)')} "
        f"FROM {MapCell._meta.db_table} WHERE {where} "
        "GROUP BY cx, cy HAVING SUM(n) > 0 ORDER BY cy, cx"
    )


@functools.cache
def _singles_sql(shape: Shape, cells: int) -> str:
    one = "(gx >= %s AND gx < %s AND gy >= %s AND gy < %s)"
    where = " AND ".join([*_where(shape, "key_group_id"), "(" + " OR ".join([one] * cells) + ")"])
    return (
        "SELECT household_id, ST_X(point), ST_Y(point), grade, case_state "
        f"FROM {MapPoint._meta.db_table} WHERE {where}"
    )


@functools.cache
def _points_sql(shape: Shape) -> str:
    where = " AND ".join([*_where(shape, "key_group_id"), "point IS NOT NULL", _bbox_sql(shape)])
    return (
        "SELECT household_id, ST_X(point), ST_Y(point), grade, case_state "
        f"FROM {MapPoint._meta.db_table} WHERE {where} LIMIT %s"
    )


def _case_sql(column: str, mapping: dict, default: str) -> str:
    """CASE column WHEN stored THEN key … ELSE default END, over our own constants."""
    whens = " ".join(f"WHEN {_literal(str(k))} THEN {_literal(v)}" for k, v in mapping.items())
    return f"CASE {column} {whens} ELSE {_literal(default)} END"


# Mercator metres to degrees, as to_lonlat; each rounded to 6 decimals as _feature rounds.
_LON_SQL = f"round((ST_X(point) * 180.0 / {ORIGIN!r})::numeric, 6)"
_LAT_SQL = "round(degrees(2 * atan(exp(ST_Y(point) / 6378137.0)) - pi() / 2)::numeric, 6)"


@functools.cache
def _points_json_sql(shape: Shape) -> str:
    """_points_sql, the features' GeoJSON written by PostgreSQL: (households, features
    joined by commas) of at most MAX_POINTS + 1 households inside the tile (_inside's test).

    Close up a tile holds up to 3,000 households: building a dict per feature and encoding
    them took 12 µs each in Python (34 ms for the densest tile at 300,000 households), the
    database writes the same text in a third of the time.
    """
    where = " AND ".join(
        [
            *_where(shape, "key_group_id"),
            "point IS NOT NULL",
            _bbox_sql(shape),
            "ST_X(point) >= %s",
            "ST_X(point) < %s",
            "ST_Y(point) > %s",
            "ST_Y(point) <= %s",
        ]
    )
    grade = _case_sql("grade", GRADE_KEY, "none")
    stage = _case_sql("case_state", STAGE_OF_STATE, "none")
    feature = (
        """'{"type":"Feature","geometry":{"type":"Point","coordinates":[' || """
        f"""{_LON_SQL} || ',' || {_LAT_SQL} || """
        """']},"properties":{"id":' || household_id || ',"n":1,"g":"' || """
        f"""{grade} || '","s":"' || {stage} || '"}}}}'"""
    )
    return (
        f"SELECT COUNT(*), string_agg(feature, ',') FROM (SELECT {feature} AS feature "
        f"FROM {MapPoint._meta.db_table} WHERE {where} LIMIT %s) t"
    )


def points_in_sql(z: int) -> bool:
    """Whether tile_json has the database write this tile's features (close-up houses on
    PostgreSQL, drawn where they are stored: not shifted onto a GCJ-02 base map)."""
    return z >= POINT_ZOOM and connection.vendor == "postgresql" and not shifts_to_gcj02()


@functools.cache
def _cells_sql(shape: Shape) -> str:
    # A point's cell on the world grid of this zoom, relative to the tile: parameters
    # ORIGIN, cell size, the tile's first cell.
    cx = "(FLOOR((ST_X(point) + %s) / %s) - %s)"
    cy = "(FLOOR((%s - ST_Y(point)) / %s) - %s)"
    where = " AND ".join(
        [
            *_where(shape, "key_group_id"),
            _bbox_sql(shape),
            f"{cx} >= 0",
            f"{cx} < {CELLS}",
            f"{cy} >= 0",
            f"{cy} < {CELLS}",
        ]
    )
    return (
        f"SELECT {cx}, {cy}, COUNT(household_id), SUM(ST_X(point)), SUM(ST_Y(point)), "
        "MIN(household_id), MIN(grade), MIN(case_state), "
        f"{_categories('COUNT(household_id)')} "
        f"FROM {MapPoint._meta.db_table} WHERE {where} GROUP BY 1, 2 ORDER BY 2, 1"
    )


def _fetch(sql: str, params: list) -> list[tuple]:
    """Run as a prepared statement on PostgreSQL: a tile's text is one of a few shapes."""
    return fetch_all(sql, params)


# --- rows to features ----------------------------------------------------------------------


def _feature(mx: float, my: float, properties: dict) -> dict:
    lon, lat = to_lonlat(mx, my)
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
        "properties": properties,
    }


def _single(household_id: int, grade: str, state: str) -> dict:
    return {
        "id": household_id,
        "n": 1,
        "g": GRADE_KEY.get(grade, "none"),
        "s": STAGE_OF_STATE.get(state, "none"),
    }


def _inside(bounds: Bounds, mx: float, my: float) -> bool:
    return bounds.minx <= mx < bounds.maxx and bounds.miny < my <= bounds.maxy


N_GRADES, N_STAGES = len(GRADES), len(STAGES)


def _cell_feature(total: int, tx: float, ty: float, counts) -> dict:
    """A cell of `total` households: mean position, then per-grade and per-stage counts."""
    mx, my = display_mercator(tx / total, ty / total)
    return _feature(
        mx,
        my,
        {
            "n": total,
            "g": [n or 0 for n in counts[:N_GRADES]],
            "s": [n or 0 for n in counts[N_GRADES : N_GRADES + N_STAGES]],
        },
    )


def _points(shape, where_params, bounds: Bounds, dx: float, dy: float) -> list[dict] | None:
    """The tile's households one by one; None when there are more than MAX_POINTS."""
    shift = shifts_to_gcj02()
    rows = _fetch(
        _points_sql(shape),
        [
            *where_params,
            *_bbox_params(shape, bounds, dx, dy, SHIFT_MARGIN if shift else 0.0),
            MAX_POINTS + 1,
        ],
    )
    if len(rows) > MAX_POINTS:
        return None
    features = []
    for household_id, px, py, grade, state in rows:
        mx, my = display_mercator(px, py) if shift else (px, py)
        if _inside(bounds, mx, my):
            features.append(_feature(mx, my, _single(household_id, grade, state)))
    return features


def _points_json(shape, where_params, bounds: Bounds) -> str | None:
    """_points as GeoJSON text written by the database (see points_in_sql); None when
    there are more than MAX_POINTS."""
    box = [bounds.minx, bounds.maxx, bounds.miny, bounds.maxy]
    [(n, text)] = _fetch(
        _points_json_sql(shape),
        [*where_params, *_bbox_params(shape, bounds, 0.0, 0.0, 0.0), *box, MAX_POINTS + 1],
    )
    if n > MAX_POINTS:
        return None
    return text or ""


def _pyramid(shape, where_params, z: int, x: int, y: int) -> list[dict]:
    """Zoom ≤ PYRAMID_TOP_ZOOM: sum the tile's MapCell rows per cell.

    MapCell level L cuts a zoom-L tile into 8 × 8 cells; zoom z reads level z - 1, which
    cuts its tile into 4 × 4 (zoom 0 reads level 0 in 8 × 8: there is no level -1 grid).
    """
    level = max(z - 1, 0)
    per_tile = 2 ** (level + 3 - z)
    box = [level, x * per_tile, (x + 1) * per_tile, y * per_tile, (y + 1) * per_tile]
    rows = _fetch(_pyramid_sql(shape), box + where_params)
    features = [_cell_feature(row[2], row[3], row[4], row[5:]) for row in rows if row[2] > 1]
    singles = [row for row in rows if row[2] == 1]
    if singles:
        # Which household a one-house cell holds: one more query, on the grid index.
        k = PYRAMID_MAX_ZOOM - level
        ranges = []
        for row in singles:
            cx, cy = row[0], row[1]
            ranges += [cx << k, (cx + 1) << k, cy << k, (cy + 1) << k]
        houses = _fetch(_singles_sql(shape, len(singles)), where_params + ranges)
        for household_id, px, py, grade, state in houses:
            mx, my = display_mercator(px, py)
            features.append(_feature(mx, my, _single(household_id, grade, state)))
    return features


def _cells(shape, where_params, z: int, x: int, y: int) -> list[dict]:
    """Zoom 14: count the tile's MapPoint rows per cell on the fly. A point's cell is its
    cell on the world grid of this zoom (a function of the point alone), so it is in one tile."""
    bounds = tile_bounds(z, x, y)
    cell = 2 * ORIGIN / (2**z * CELLS)
    cx = [ORIGIN, cell, x * CELLS]
    cy = [ORIGIN, cell, y * CELLS]
    params = cx + cy + where_params + _bbox_params(shape, bounds, 0.0, 0.0, 1.0) + cx + cx + cy + cy
    features = []
    for row in _fetch(_cells_sql(shape), params):
        total, tx, ty = row[2], row[3], row[4]
        if total == 1:
            mx, my = display_mercator(tx, ty)
            features.append(_feature(mx, my, _single(row[5], row[6], row[7])))
        else:
            features.append(_cell_feature(total, tx, ty, row[8:]))
    return features


def _stored_grade(key: str) -> str:
    return "" if key == "none" else key


def tile(*, user, z: int, x: int, y: int, filters: MapFilters) -> dict:
    """The GeoJSON FeatureCollection of tile z/x/y for this user and these filters."""
    bounds = tile_bounds(z, x, y)
    codes = cached_region_codes(user)
    if codes == []:
        return {"type": "FeatureCollection", "features": []}  # no regions: nothing to ask
    shape = _shape(codes, filters)
    where_params = _where_params(codes, filters)
    if z <= PYRAMID_TOP_ZOOM:
        features = _pyramid(shape, where_params, z, x, y)
    else:
        features = None
        if z >= POINT_ZOOM:
            dx, dy = _offset(bounds) if shifts_to_gcj02() else (0.0, 0.0)
            features = _points(shape, where_params, bounds, dx, dy)
        if features is None:
            features = _cells(shape, where_params, z, x, y)
    return {"type": "FeatureCollection", "features": features}


def _collection_json(features: str) -> str:
    return '{"type":"FeatureCollection","features":[' + features + "]}"


def tile_json(*, user, z: int, x: int, y: int, filters: MapFilters) -> str:
    """tile() as GeoJSON text (compact, UTF-8 as is). Close-up houses on PostgreSQL are
    written by the database (points_in_sql); everything else is tile() encoded here."""
    if points_in_sql(z):
        bounds = tile_bounds(z, x, y)
        codes = cached_region_codes(user)
        if codes == []:
            return _collection_json("")
        shape = _shape(codes, filters)
        text = _points_json(shape, _where_params(codes, filters), bounds)
        if text is not None:
            return _collection_json(text)
    data = tile(user=user, z=z, x=x, y=y, filters=filters)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
