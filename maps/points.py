"""Keeping MapPoint and MapCell in step with the registry, and the data version tile ETags carry.

refresh() recomputes the rows of the given households (or of all) from the registry in one
INSERT … SELECT … ON CONFLICT: village code, point in EPSG:3857 and its grid cell, grade of
the current house, state and funding year of the household's latest case, key group. The
registry is read with joins (the latest case per household by DISTINCT ON, a window function
on SpatiaLite), never a subquery per household: after a 100,000-row import the per-row form
was most of the import. Every household has a row (the progress figures count households
without a location too); those have no point and appear in no tile.

MapCell follows by deltas for a few households: their stored MapPoint rows subtracted from
their cells and their fresh rows added, then emptied cells deleted, in one statement. Above
FULL_REBUILD_ABOVE households (a bulk load) the cells are rebuilt from MapPoint instead:
counted once per zoom-12 cell, then the coarser zooms summed from those counts. All in the
caller's transaction, which first takes the MapVersion row lock: refreshes queue one behind
the other, so cell updates never deadlock and the version moves once per refresh.

On PostgreSQL a statement takes every id at once (`= ANY(array)`); SQLite's bound-variable
limit makes it CHUNK ids at a time there. Otherwise the same SQL runs on PostGIS and
SpatiaLite.

Who calls it: maps.signals for single saves of Household, House and RenovationCase; the
bulk paths through housing.signals.households_changed; `refresh_map_points` for all.
"""

import math
from collections.abc import Iterable, Iterator

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from housing.dbsettings import id_array, local_settings
from housing.importers import pgcopy
from housing.models import House, Household, Region
from maps.models import MapCell, MapPoint, MapVersion
from renovation.models import RenovationCase

CHUNK = 500  # ids per statement on SQLite (each statement names them up to three times)
ORIGIN = 20037508.342789244  # half the Web Mercator world width, metres
GRID_LEVEL = 15  # MapPoint.gx/gy: 2^15 cells across the world = zoom 12's 32-pixel cells
PYRAMID_MAX_ZOOM = GRID_LEVEL - 3  # zooms 0..12 are counted in MapCell
# Above this many households a refresh rebuilds the cells instead of applying deltas.
FULL_REBUILD_ABOVE = 20000


class _Ids:
    """Which households a statement covers: all, or a list of ids written into the SQL as
    `column = ANY(%s::bigint[])` (PostgreSQL, one array literal) or `column IN (%s, …)`."""

    def __init__(self, ids: list[int] | None):
        self.ids = ids

    def where(self, column: str) -> tuple[str, list]:
        if self.ids is None:
            return "1 = 1", []
        if connection.vendor == "postgresql":
            return f"{column} = ANY(%s::bigint[])", [id_array(self.ids)]
        return f"{column} IN ({', '.join(['%s'] * len(self.ids))})", list(self.ids)


def _batches(ordered: list[int] | None) -> Iterator[_Ids]:
    if ordered is None or connection.vendor == "postgresql":
        yield _Ids(ordered)
        return
    for start in range(0, len(ordered), CHUNK):
        yield _Ids(ordered[start : start + CHUNK])


def _latest_case_sql(ids: _Ids) -> tuple[str, list]:
    """household_id, state, funding_year of each household's latest case."""
    case = RenovationCase._meta.db_table
    house = House._meta.db_table
    where, params = ids.where("hh.household_id")
    if connection.vendor == "postgresql":
        sql = f"""
            SELECT DISTINCT ON (hh.household_id) hh.household_id AS household_id,
                   c.state AS state, c.funding_year AS funding_year
            FROM {case} c JOIN {house} hh ON hh.id = c.house_id
            WHERE {where}
            ORDER BY hh.household_id, c.created_at DESC, c.id DESC
        """
    else:
        sql = f"""
            SELECT o.household_id, o.state, o.funding_year FROM (
                SELECT hh.household_id AS household_id, c.state AS state,
                       c.funding_year AS funding_year,
                       ROW_NUMBER() OVER (PARTITION BY hh.household_id
                                          ORDER BY c.created_at DESC, c.id DESC) AS nth
                FROM {case} c JOIN {house} hh ON hh.id = c.house_id
                WHERE {where}
            ) o WHERE o.nth = 1
        """
    return sql, params


def _source_sql(ids: _Ids) -> tuple[str, list]:
    """Each household's map row as the registry says it now: id, village code, point in
    EPSG:3857 and its grid cell, grade of the current house, state and funding year of the
    latest case, key group."""
    household = Household._meta.db_table
    region = Region._meta.db_table
    house = House._meta.db_table
    latest, latest_params = _latest_case_sql(ids)
    where, params = ids.where("h.id")
    cells = 2**GRID_LEVEL
    # FLOOR, then CAST: PostgreSQL's CAST rounds, SQLite's truncates.
    gx = f"CAST(FLOOR((ST_X(s.pt) + {ORIGIN!r}) * {cells} / {2 * ORIGIN!r}) AS INTEGER)"
    gy = f"CAST(FLOOR(({ORIGIN!r} - ST_Y(s.pt)) * {cells} / {2 * ORIGIN!r}) AS INTEGER)"
    sql = f"""
        SELECT s.id, s.code, s.pt, {gx} AS gx, {gy} AS gy, s.grade, s.state,
               s.key_group_id, s.year
        FROM (
            SELECT h.id AS id, r.code AS code, ST_Transform(h.location, 3857) AS pt,
                   COALESCE(cur.safety_grade, '') AS grade, COALESCE(lc.state, '') AS state,
                   h.key_group_id AS key_group_id, lc.funding_year AS year
            FROM {household} h
            JOIN {region} r ON r.id = h.village_id
            LEFT JOIN {house} cur ON cur.household_id = h.id AND cur.is_current
            LEFT JOIN ({latest}) lc ON lc.household_id = h.id
            WHERE {where}
        ) s
    """
    return sql, [*latest_params, *params]


POINT_COLUMNS = ("region_code", "point", "gx", "gy", "grade", "case_state", "key_group_id")
POINT_COLUMNS += ("funding_year",)


def _upsert_sql(ids: _Ids) -> tuple[str, list]:
    """Insert the households' rows, or update those that differ: a row the registry left as
    it was is not written again (a re-import of an unchanged file rewrote 100,000 rows and
    their five indexes for nothing)."""
    point = MapPoint._meta.db_table
    source, params = _source_sql(ids)
    columns = ", ".join(POINT_COLUMNS)
    distinct = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    sql = f"""
        INSERT INTO {point} (household_id, {columns})
        SELECT t.id, t.code, t.pt, t.gx, t.gy, t.grade, t.state, t.key_group_id, t.year
        FROM ({source}) t
        WHERE 1 = 1
        ON CONFLICT (household_id) DO UPDATE SET
            {", ".join(f"{c} = excluded.{c}" for c in POINT_COLUMNS)}
        WHERE ({", ".join(f"{point}.{c}" for c in POINT_COLUMNS)})
              {distinct} ({", ".join(f"excluded.{c}" for c in POINT_COLUMNS)})
    """
    return sql, params


CELL_KEY = "level, cx, cy, region_code, grade, case_state, key_group_ref, funding_year"
ATTRIBUTES = "region_code, grade, case_state, key_group_ref, funding_year"


def _cells_sql(rows: str) -> str:
    """The cell counts (CELL_KEY, n, located, sx, sy) of `rows` (columns gx, gy, x, y,
    region_code, grade, case_state, key_group_id, funding_year, and n: 1 to add the row, -1
    to subtract it), as a statement head `WITH g12 AS (…), g11 AS (…), … ` and a SELECT
    that reads them.

    The rows are summed by zoom-12 cell once (g12), and each coarser level sums the level
    below it (g11 from g12, …, g0 from g1): a cell's parent is (cx >> 1, cy >> 1). A
    100,000-row load thus aggregates each level's own few cells, not the 94,000 finest cells
    once per level (1.2 million rows), and each point is projected once.
    """
    finest = PYRAMID_MAX_ZOOM
    levels = [
        f"""g{finest} AS (
            SELECT r.gx AS cx, r.gy AS cy, r.region_code AS region_code, r.grade AS grade,
                   r.case_state AS case_state, COALESCE(r.key_group_id, 0) AS key_group_ref,
                   COALESCE(r.funding_year, 0) AS funding_year, SUM(r.n) AS n,
                   SUM(CASE WHEN r.gx IS NULL THEN 0 ELSE r.n END) AS located,
                   SUM(r.n * COALESCE(r.x, 0)) AS sx, SUM(r.n * COALESCE(r.y, 0)) AS sy
            FROM ({rows}) r
            GROUP BY 1, 2, 3, 4, 5, 6, 7
        )"""
    ]
    levels += [
        f"""g{level} AS (
            SELECT cx >> 1 AS cx, cy >> 1 AS cy, {ATTRIBUTES}, SUM(n) AS n,
                   SUM(located) AS located, SUM(sx) AS sx, SUM(sy) AS sy
            FROM g{level + 1} WHERE cx IS NOT NULL
            GROUP BY 1, 2, 3, 4, 5, 6, 7
        )"""
        for level in range(finest - 1, -1, -1)
    ]
    head = "WITH " + ", ".join(levels)
    selects = [
        f"SELECT {level} AS level, cx, cy, {ATTRIBUTES}, n, located, sx, sy "
        f"FROM g{level} WHERE cx IS NOT NULL"
        for level in range(finest + 1)
    ]
    # The whole region's row per attribute set: every household, located or not.
    selects.append(
        f"SELECT {MapCell.REGION_LEVEL}, 0, 0, {ATTRIBUTES}, "
        f"SUM(n), SUM(located), SUM(sx), SUM(sy) FROM g{finest} GROUP BY 4, 5, 6, 7, 8"
    )
    return head, " UNION ALL ".join(selects)


def _add_to_cells_sql(rows: str) -> str:
    """Add the cell counts of `rows` (see _cells_sql) to the cells."""
    cell = MapCell._meta.db_table
    head, select = _cells_sql(rows)
    return f"""
        {head}
        INSERT INTO {cell} ({CELL_KEY}, n, located, sx, sy)
        SELECT {CELL_KEY}, n, located, sx, sy
        FROM ({select}) d
        WHERE d.n <> 0 OR d.located <> 0 OR d.sx <> 0 OR d.sy <> 0
        ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
        ON CONFLICT ({CELL_KEY}) DO UPDATE SET
            n = {cell}.n + excluded.n, located = {cell}.located + excluded.located,
            sx = {cell}.sx + excluded.sx, sy = {cell}.sy + excluded.sy
    """


def _stored_rows_sql(where: str, sign: int) -> str:
    point = MapPoint._meta.db_table
    return f"""
        SELECT p.gx, p.gy, ST_X(p.point) AS x, ST_Y(p.point) AS y, p.region_code, p.grade,
               p.case_state, p.key_group_id, p.funding_year, {sign} AS n
        FROM {point} p WHERE {where}
    """


def _cells_delta_sql(ids: _Ids) -> tuple[str, list]:
    """The cells' change in one statement: minus the households' stored MapPoint rows, plus
    their rows as the registry says now (before the MapPoint upsert)."""
    stored_where, stored_params = ids.where("p.household_id")
    source, source_params = _source_sql(ids)
    fresh = f"""
        SELECT t.gx, t.gy, ST_X(t.pt) AS x, ST_Y(t.pt) AS y, t.code AS region_code, t.grade,
               t.state AS case_state, t.key_group_id, t.year AS funding_year, 1 AS n
        FROM ({source}) t
    """
    rows = f"{_stored_rows_sql(stored_where, -1)} UNION ALL {fresh}"
    return _add_to_cells_sql(rows), [*stored_params, *source_params]


def _orphans_sql() -> str:
    """Delete the MapPoint rows whose household is gone (MapPoint's reference is not a
    database foreign key: see maps.models.MapPoint)."""
    point, household = MapPoint._meta.db_table, Household._meta.db_table
    return (
        f"DELETE FROM {point} WHERE NOT EXISTS "
        f"(SELECT 1 FROM {household} h WHERE h.id = {point}.household_id)"
    )


def _rebuild_cells_sql() -> str:
    """Every cell, counted from MapPoint."""
    head, select = _cells_sql(_stored_rows_sql("1 = 1", 1))
    return f"{head} INSERT INTO {MapCell._meta.db_table} ({CELL_KEY}, n, located, sx, sy) {select}"


# For a statement over many households (PostgreSQL): no JIT, whose compiling took seconds
# (PostGIS functions' declared costs make any bulk statement look expensive enough for it)
# and never paid back, and memory to group and sort in instead of temporary files.
BULK_SETTINGS = {"jit": "off", "work_mem": "64MB"}


def _bulk(cursor, bulk: bool):
    """BULK_SETTINGS for the statements inside a bulk refresh, as they were afterwards."""
    return local_settings(cursor, BULK_SETTINGS if bulk else {})


def _analyze_if_grown(n: int | None) -> None:
    """Fresh planner statistics for the map tables if a refresh of n households (None:
    all) changed enough of them, by autovacuum's own rule (pgcopy.analyze): the tiles'
    queries are planned on their statistics, and after a first bulk load those say "empty"."""
    changed = math.inf if n is None else n
    pgcopy.analyze({MapPoint: changed, MapCell: changed}, whole=True)


def refresh(ids: Iterable[int] | None = None) -> None:
    """Recompute the map rows of these households (None: all), and bump the version."""
    ordered = None if ids is None else sorted({int(i) for i in ids})
    if ordered is not None and not ordered:
        return
    bulk = ordered is None or len(ordered) > CHUNK
    # No savepoint of its own inside the writer's transaction: a failure fails the write.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        bump()  # first: the version row's lock queues concurrent refreshes
        with _bulk(cursor, bulk):
            if ordered is None or len(ordered) > FULL_REBUILD_ABOVE:
                if ordered is None:
                    cursor.execute(_orphans_sql())
                for batch in _batches(ordered):
                    cursor.execute(*_upsert_sql(batch))
                cursor.execute(f"DELETE FROM {MapCell._meta.db_table}")
                cursor.execute(_rebuild_cells_sql())
            else:
                for batch in _batches(ordered):
                    cursor.execute(*_cells_delta_sql(batch))
                    cursor.execute(*_upsert_sql(batch))
                cursor.execute(f"DELETE FROM {MapCell._meta.db_table} WHERE n = 0")
        _analyze_if_grown(None if ordered is None else len(ordered))


def forget(ids: Iterable[int]) -> None:
    """Take households about to be deleted out of the cells (their MapPoint rows cascade)."""
    ordered = sorted({int(i) for i in ids})
    if not ordered:
        return
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        bump()
        for batch in _batches(ordered):
            where, params = batch.where("p.household_id")
            cursor.execute(_add_to_cells_sql(_stored_rows_sql(where, -1)), params)
        cursor.execute(f"DELETE FROM {MapCell._meta.db_table} WHERE n = 0")


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
