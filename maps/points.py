"""Keeping MapPoint and MapCell in step with the registry, and the data version tile ETags carry.

refresh() recomputes the rows of the given households (or of all) from the registry in one
INSERT … SELECT … ON CONFLICT per chunk: village code, point in EPSG:3857 and its grid cell,
grade of the current house, state and funding year of the household's latest case, key
group. Every household has a row (the progress figures count households without a location
too); those have no point and appear in no tile.

MapCell follows by deltas, in one statement per chunk: the chunk's stored MapPoint rows
subtracted from their cells and its fresh rows added, then emptied cells deleted. All in the
caller's transaction, which first takes the MapVersion row lock: refreshes queue one behind
the other, so cell updates never deadlock and the version moves once per refresh. The same
SQL runs on PostGIS and SpatiaLite.

Who calls it: maps.signals for single saves of Household, House and RenovationCase; the
bulk paths through housing.signals.households_changed; `refresh_map_points` for all.
"""

from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from housing.models import House, Household, Region
from maps.models import MapCell, MapPoint, MapVersion
from renovation.models import RenovationCase

CHUNK = 500  # ids per statement: SQLite allows 999 parameters in older builds
ORIGIN = 20037508.342789244  # half the Web Mercator world width, metres
GRID_LEVEL = 15  # MapPoint.gx/gy: 2^15 cells across the world = zoom 12's 32-pixel cells
PYRAMID_MAX_ZOOM = GRID_LEVEL - 3  # zooms 0..12 are counted in MapCell
# Above this many households a refresh rebuilds the cells instead of applying deltas.
FULL_REBUILD_ABOVE = 20000


def _source_sql(where: str) -> str:
    """Each household's map row as the registry says it now: id, village code, point in
    EPSG:3857 and its grid cell, grade of the current house, state and funding year of the
    latest case, key group."""
    household = Household._meta.db_table
    region = Region._meta.db_table
    house = House._meta.db_table
    case = RenovationCase._meta.db_table
    latest = (
        f"SELECT c.{{col}} FROM {case} c JOIN {house} hh ON hh.id = c.house_id "
        f"WHERE hh.household_id = h.id ORDER BY c.created_at DESC, c.id DESC LIMIT 1"
    )
    cells = 2**GRID_LEVEL
    # FLOOR, then CAST: PostgreSQL's CAST rounds, SQLite's truncates.
    gx = f"CAST(FLOOR((ST_X(s.pt) + {ORIGIN!r}) * {cells} / {2 * ORIGIN!r}) AS INTEGER)"
    gy = f"CAST(FLOOR(({ORIGIN!r} - ST_Y(s.pt)) * {cells} / {2 * ORIGIN!r}) AS INTEGER)"
    return f"""
        SELECT s.id, s.code, s.pt, {gx} AS gx, {gy} AS gy, s.grade, s.state,
               s.key_group_id, s.year
        FROM (
            SELECT h.id AS id, r.code AS code, ST_Transform(h.location, 3857) AS pt,
                   COALESCE((SELECT cur.safety_grade FROM {house} cur
                             WHERE cur.household_id = h.id AND cur.is_current), '') AS grade,
                   COALESCE(({latest.format(col="state")}), '') AS state,
                   h.key_group_id AS key_group_id,
                   ({latest.format(col="funding_year")}) AS year
            FROM {household} h JOIN {region} r ON r.id = h.village_id
            WHERE {where}
        ) s
    """


def _upsert_sql(where: str) -> str:
    point = MapPoint._meta.db_table
    return f"""
        INSERT INTO {point} (household_id, region_code, point, gx, gy, grade, case_state,
                             key_group_id, funding_year)
        SELECT t.id, t.code, t.pt, t.gx, t.gy, t.grade, t.state, t.key_group_id, t.year
        FROM ({_source_sql(where)}) t
        WHERE 1 = 1
        ON CONFLICT (household_id) DO UPDATE SET
            region_code = excluded.region_code, point = excluded.point, gx = excluded.gx,
            gy = excluded.gy, grade = excluded.grade, case_state = excluded.case_state,
            key_group_id = excluded.key_group_id, funding_year = excluded.funding_year
    """


def _levels_sql() -> str:
    levels = [MapCell.REGION_LEVEL, *range(PYRAMID_MAX_ZOOM + 1)]
    return " UNION ALL ".join(f"SELECT {level} AS level" for level in levels)


CELL_KEY = "level, cx, cy, region_code, grade, case_state, key_group_ref, funding_year"


def _per_level_sql(rows: str, sign: int) -> str:
    """One row per pyramid level (and the region level) for each of `rows` (columns gx, gy,
    x, y, region_code, grade, case_state, key_group_id, funding_year), counted with `sign`."""
    shift = f"({PYRAMID_MAX_ZOOM} - lv.level)"
    return f"""
        SELECT lv.level AS level,
               CASE WHEN lv.level < 0 THEN 0 ELSE r.gx >> {shift} END AS cx,
               CASE WHEN lv.level < 0 THEN 0 ELSE r.gy >> {shift} END AS cy,
               r.region_code AS region_code, r.grade AS grade, r.case_state AS case_state,
               COALESCE(r.key_group_id, 0) AS key_group_ref,
               COALESCE(r.funding_year, 0) AS funding_year,
               {sign} AS n, CASE WHEN r.gx IS NULL THEN 0 ELSE {sign} END AS located,
               {sign} * COALESCE(r.x, 0) AS sx, {sign} * COALESCE(r.y, 0) AS sy
        FROM ({rows}) r CROSS JOIN ({_levels_sql()}) lv
        WHERE lv.level < 0 OR r.gx IS NOT NULL
    """


def _add_to_cells_sql(deltas: str) -> str:
    """Add per-level delta rows to their cells, summed by cell first."""
    cell = MapCell._meta.db_table
    return f"""
        INSERT INTO {cell} ({CELL_KEY}, n, located, sx, sy)
        SELECT {CELL_KEY}, SUM(n), SUM(located), SUM(sx), SUM(sy)
        FROM ({deltas}) d
        WHERE 1 = 1
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
        HAVING SUM(n) <> 0 OR SUM(located) <> 0 OR SUM(sx) <> 0 OR SUM(sy) <> 0
        ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
        ON CONFLICT ({CELL_KEY}) DO UPDATE SET
            n = {cell}.n + excluded.n, located = {cell}.located + excluded.located,
            sx = {cell}.sx + excluded.sx, sy = {cell}.sy + excluded.sy
    """


def _stored_rows_sql(where: str) -> str:
    point = MapPoint._meta.db_table
    return f"""
        SELECT p.gx, p.gy, ST_X(p.point) AS x, ST_Y(p.point) AS y, p.region_code, p.grade,
               p.case_state, p.key_group_id, p.funding_year
        FROM {point} p WHERE {where}
    """


def _fresh_rows_sql(where: str) -> str:
    return f"""
        SELECT t.gx, t.gy, ST_X(t.pt) AS x, ST_Y(t.pt) AS y, t.code AS region_code, t.grade,
               t.state AS case_state, t.key_group_id, t.year AS funding_year
        FROM ({_source_sql(where)}) t
    """


def _cells_sql(sign: int, where: str) -> str:
    """Add (sign 1) or subtract (sign -1) the MapPoint rows matching `where` to their cells."""
    return _add_to_cells_sql(_per_level_sql(_stored_rows_sql(where), sign))


def _cells_delta_sql(point_where: str, household_where: str) -> str:
    """The cells' change in one statement: minus the households' stored MapPoint rows, plus
    their rows as the registry says now (before the MapPoint upsert)."""
    return _add_to_cells_sql(
        _per_level_sql(_stored_rows_sql(point_where), -1)
        + " UNION ALL "
        + _per_level_sql(_fresh_rows_sql(household_where), 1)
    )


def refresh(ids: Iterable[int] | None = None) -> None:
    """Recompute the map rows of these households (None: all), and bump the version."""
    ordered = None if ids is None else sorted({int(i) for i in ids})
    if ordered is not None and not ordered:
        return
    cell = MapCell._meta.db_table
    # No savepoint of its own inside the writer's transaction: a failure fails the write.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        bump()  # first: the version row's lock queues concurrent refreshes
        if ordered is None or len(ordered) > FULL_REBUILD_ABOVE:
            if ordered is None:
                cursor.execute(_upsert_sql("1 = 1"))
            else:
                for chunk in _chunks(ordered):
                    cursor.execute(_upsert_sql(f"h.id IN ({_marks(chunk)})"), chunk)
            cursor.execute(f"DELETE FROM {cell}")
            cursor.execute(_cells_sql(1, "1 = 1"))
            if connection.vendor == "postgresql":
                cursor.execute(f"ANALYZE {MapPoint._meta.db_table}, {cell}")
            return
        for chunk in _chunks(ordered):
            marks = _marks(chunk)
            points, households = f"p.household_id IN ({marks})", f"h.id IN ({marks})"
            cursor.execute(_cells_delta_sql(points, households), [*chunk, *chunk])
            cursor.execute(_upsert_sql(households), chunk)
        cursor.execute(f"DELETE FROM {cell} WHERE n = 0")


def forget(ids: Iterable[int]) -> None:
    """Take households about to be deleted out of the cells (their MapPoint rows cascade)."""
    ordered = sorted({int(i) for i in ids})
    if not ordered:
        return
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        bump()
        for chunk in _chunks(ordered):
            cursor.execute(_cells_sql(-1, f"p.household_id IN ({_marks(chunk)})"), chunk)
        cursor.execute(f"DELETE FROM {MapCell._meta.db_table} WHERE n = 0")


def _chunks(ordered: list[int]):
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def _marks(chunk: list[int]) -> str:
    return ", ".join(["%s"] * len(chunk))


def bump() -> None:
    """Mark the map data changed (in the caller's transaction)."""
    if not MapVersion.objects.filter(pk=1).update(
        version=F("version") + 1, changed_at=timezone.now()
    ):
        MapVersion.objects.get_or_create(pk=1, defaults={"version": 1})


def version() -> int:
    """The current map data version: part of every tile's ETag."""
    row = MapVersion.objects.filter(pk=1).values_list("version", flat=True).first()
    return row or 0
