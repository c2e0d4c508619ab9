"""Keeping MapPoint and MapCell in step with the registry, and the data version tile ETags carry.

refresh() recomputes the rows of the given households (or of all) from the registry in one
INSERT … SELECT … ON CONFLICT per chunk: village code, point in EPSG:3857 and its grid cell,
grade of the current house, state and funding year of the household's latest case, key
group. Every household has a row (the progress figures count households without a location
too); those have no point and appear in no tile.

MapCell follows by deltas: the chunk's old MapPoint rows are subtracted from their cells,
the new ones added, emptied cells deleted. All in the caller's transaction, which first
takes the MapVersion row lock: refreshes queue one behind the other, so cell updates never
deadlock and the version moves once per refresh. The same SQL runs on PostGIS and SpatiaLite.

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


def _upsert_sql(where: str) -> str:
    point = MapPoint._meta.db_table
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
    gx = f"CAST(FLOOR((ST_X(t.pt) + {ORIGIN!r}) * {cells} / {2 * ORIGIN!r}) AS INTEGER)"
    gy = f"CAST(FLOOR(({ORIGIN!r} - ST_Y(t.pt)) * {cells} / {2 * ORIGIN!r}) AS INTEGER)"
    return f"""
        INSERT INTO {point} (household_id, region_code, point, gx, gy, grade, case_state,
                             key_group_id, funding_year)
        SELECT t.id, t.code, t.pt, {gx}, {gy}, t.grade, t.state, t.key_group_id, t.year
        FROM (
            SELECT h.id AS id, r.code AS code, ST_Transform(h.location, 3857) AS pt,
                   COALESCE((SELECT cur.safety_grade FROM {house} cur
                             WHERE cur.household_id = h.id AND cur.is_current), '') AS grade,
                   COALESCE(({latest.format(col="state")}), '') AS state,
                   h.key_group_id AS key_group_id,
                   ({latest.format(col="funding_year")}) AS year
            FROM {household} h JOIN {region} r ON r.id = h.village_id
            WHERE {where}
        ) t
        WHERE 1 = 1
        ON CONFLICT (household_id) DO UPDATE SET
            region_code = excluded.region_code, point = excluded.point, gx = excluded.gx,
            gy = excluded.gy, grade = excluded.grade, case_state = excluded.case_state,
            key_group_id = excluded.key_group_id, funding_year = excluded.funding_year
    """


def _levels_sql() -> str:
    levels = [MapCell.REGION_LEVEL, *range(PYRAMID_MAX_ZOOM + 1)]
    return " UNION ALL ".join(f"SELECT {level} AS level" for level in levels)


def _cells_sql(sign: int, where: str) -> str:
    """Add (sign 1) or subtract (sign -1) the MapPoint rows matching `where` to their cells."""
    point = MapPoint._meta.db_table
    cell = MapCell._meta.db_table
    key = "level, cx, cy, region_code, grade, case_state, key_group_ref, funding_year"
    shift = f"({PYRAMID_MAX_ZOOM} - lv.level)"
    return f"""
        INSERT INTO {cell} ({key}, n, located, sx, sy)
        SELECT lv.level,
               CASE WHEN lv.level < 0 THEN 0 ELSE p.gx >> {shift} END,
               CASE WHEN lv.level < 0 THEN 0 ELSE p.gy >> {shift} END,
               p.region_code, p.grade, p.case_state,
               COALESCE(p.key_group_id, 0), COALESCE(p.funding_year, 0),
               {sign} * COUNT(*), {sign} * COUNT(p.gx),
               {sign} * COALESCE(SUM(ST_X(p.point)), 0), {sign} * COALESCE(SUM(ST_Y(p.point)), 0)
        FROM {point} p CROSS JOIN ({_levels_sql()}) lv
        WHERE (lv.level < 0 OR p.gx IS NOT NULL) AND {where}
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
        ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
        ON CONFLICT ({key}) DO UPDATE SET
            n = {cell}.n + excluded.n, located = {cell}.located + excluded.located,
            sx = {cell}.sx + excluded.sx, sy = {cell}.sy + excluded.sy
    """


def refresh(ids: Iterable[int] | None = None) -> None:
    """Recompute the map rows of these households (None: all), and bump the version."""
    ordered = None if ids is None else sorted({int(i) for i in ids})
    if ordered is not None and not ordered:
        return
    cell = MapCell._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
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
            where = f"p.household_id IN ({_marks(chunk)})"
            cursor.execute(_cells_sql(-1, where), chunk)
            cursor.execute(_upsert_sql(f"h.id IN ({_marks(chunk)})"), chunk)
            cursor.execute(_cells_sql(1, where), chunk)
        cursor.execute(f"DELETE FROM {cell} WHERE n = 0")


def forget(ids: Iterable[int]) -> None:
    """Take households about to be deleted out of the cells (their MapPoint rows cascade)."""
    ordered = sorted({int(i) for i in ids})
    if not ordered:
        return
    with transaction.atomic(), connection.cursor() as cursor:
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
