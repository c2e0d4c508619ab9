#!/usr/bin/env python
"""Benchmark: the officials' maps at 2,000 and at 300,000 households.

    DATABASE_URL=$(bash scripts/ensure_postgis.sh) .venv/bin/python bench/bench_maps.py \
        [--households 300000] [--fresh] [--drop]

Needs a PostGIS server (DATABASE_URL); the database it names is never touched. The demo
county (`manage.py seed_demo`, photos and cases included) takes about four minutes to seed at
300,000 households, so the bench keeps two databases between runs: anju_bench_maps_2000 and
anju_bench_maps_<households>. One is reused when a previous run seeded it to the end (a
comment on the database says so) and it holds that many households; otherwise it is created,
migrated and seeded. `migrate` runs every time. --fresh drops and reseeds both; --drop removes
both (and their photo files under var/bench_maps/) at the end.

Each database is measured in its own process (Django is set up once per process), through
django.test.Client logged in as the demo "county" user (County official, whole county), with
DJANGO_DEBUG=false as in production (no query log). It prints, and writes to
bench/results/bench_maps.txt:

  (a) the county overview /maps/520399/: HTML bytes and build time (p50 after warm-ups) at
      2,000 and at N households, and the ratio N/2,000 of both. Target: flat.
  (b) GeoJSON tiles for zooms 8-17: every tile covering the county, or a seeded sample of
      tiles around households (the densest tile first, then the tiles of random households).
      Each tile through the Client (session, auth, scoping, filters, ETag, JSON) against the
      raw SQL of the same tile: the statements the view sent to maps_mapcell / maps_mappoint,
      captured, then re-executed through a plain psycopg connection and fetched. p50 and p95
      per zoom and overall; targets: p95 < 100 ms, and the goal p95 ours / p95 raw <= 1.5
      (printed as met / NOT met; sum(ours) / sum(raw) is printed too). Fair: the raw side is
      the very statements with their values quoted in, as text (what Django's own cursors
      send), over a psycopg connection opened once, fetched to Python tuples. The view runs
      them as prepared statements (accounts.statements), which the raw text cannot be: a
      tile's values change, its text does not.
  (c) maps.selectors.region_figures(county) against a per-household Python loop over the
      registry (village, current house's grade, latest case's state) giving the same
      per-township counts (asserted equal).
  (d) the write cost of the pyramid: one House grade change saved with and without the
      maps' post_save refresh (p50 of 50, each rolled back), and a full rebuild of MapPoint
      and MapCell (maps.points.refresh()).

Figures only: nothing here fails on a timing. The targets are printed as met / NOT met.
"""

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.throwaway_db import ThrowawayDatabase  # noqa: E402

BENCH = "bench_maps"
COUNTY = "520399"  # the demo county (demo.registry.COUNTY)
COUNTY_USER = "county"
SMALL = 2000
MARKER = "anju bench_maps: seed_demo --households {n} finished"
RESULTS = ROOT / "bench" / "results" / "bench_maps.txt"
MEDIA = ROOT / "var" / "bench_maps"
ZOOMS = list(range(8, 18))
ORIGIN = 20037508.342789244  # maps.points.ORIGIN (the parent process does not import Django)
TILE_P95_TARGET_MS = 100.0
OVERHEAD_TARGET = 1.5  # p95 ours / p95 raw SQL
FLAT_SIZE = 1.05  # "flat": N/2k HTML size within 5 %
FLAT_TIME = 1.5  # and build time within 1.5x (timer noise on a shared 2-core machine)
# The tables the measured reads use: vacuumed and analysed before measuring, as autovacuum
# leaves them soon after a bulk load.
TABLES = [
    "maps_mappoint",
    "maps_mapcell",
    "housing_household",
    "housing_house",
    "housing_region",
    "inspections_renovationcase",
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--households",
        type=int,
        default=300_000,
        help="Households in the big county (default 300000); the small one has 2000.",
    )
    parser.add_argument(
        "--repeat", type=int, default=15, help="Timed overview builds per county (default 15)."
    )
    parser.add_argument(
        "--tiles", type=int, default=30, help="Tiles per zoom at most (default 30)."
    )
    parser.add_argument(
        "--tile-repeat", type=int, default=3, help="Timed requests per tile (default 3)."
    )
    parser.add_argument(
        "--writes", type=int, default=50, help="Single-house saves timed (default 50)."
    )
    parser.add_argument("--seed", type=int, default=2026, help="Sampling seed (default 2026).")
    parser.add_argument(
        "--fresh", action="store_true", help="Drop the bench databases first and seed them again."
    )
    parser.add_argument(
        "--drop", action="store_true", help="Drop the bench databases (and photos) at the end."
    )
    # For development: measure an existing seeded database as the big county (never seeded,
    # never dropped).
    parser.add_argument("--database-name", default="", help=argparse.SUPPRESS)
    # The per-database process the main one starts.
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    parser.add_argument("--worker-db", default="", help=argparse.SUPPRESS)
    parser.add_argument("--worker-seed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.households <= SMALL:
        parser.error(
            f"--households must be more than {SMALL}, the small county; got {args.households}"
        )
    for name in ("repeat", "tiles", "tile_repeat", "writes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def log(message: str) -> None:
    """Progress, on stderr: not part of the results."""
    print(f"{BENCH}: {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p95 of 20 values is the 19th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


# --- the main process: databases, workers, report ---------------------------------------


def database_for(url: str, name: str) -> ThrowawayDatabase:
    return ThrowawayDatabase(url=url, name=name, bench=BENCH)


def seeded_households(database: ThrowawayDatabase) -> int | None:
    """How many demo households a previous run finished seeding here; None: not reusable."""
    import psycopg

    with psycopg.connect(database.maintenance, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [database.name],
        ).fetchone()
    if row is None or not row[0]:
        return None
    try:
        count = county_households(database)
    except psycopg.Error:
        return None
    return count if row[0] == MARKER.format(n=count) else None


def county_households(database) -> int:
    """The demo county's households in `database`, counted in SQL."""
    import psycopg

    with psycopg.connect(database.psycopg_url, autocommit=True) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM housing_household h "
            "JOIN housing_region r ON r.id = h.village_id WHERE r.code LIKE %s",
            [COUNTY + "%"],
        ).fetchone()
    return count


def prepare(database: ThrowawayDatabase, households: int, fresh: bool) -> bool:
    """Make sure the database exists; True when it must be seeded."""
    if not fresh and seeded_households(database) == households:
        log(f"{database.name}: reusing its {households:,} households")
        return False
    log(f"{database.name}: creating it (it will be seeded with {households:,} households)")
    database.create()
    shutil.rmtree(MEDIA / database.name, ignore_errors=True)
    return True


def run_worker(kind: str, database: ThrowawayDatabase, seed_it: bool, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="anju-bench-maps-") as tmp:
        out = Path(tmp) / "result.json"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            kind,
            "--worker-db",
            database.name,
            "--worker-out",
            str(out),
            "--households",
            str(args.households),
            "--repeat",
            str(args.repeat),
            "--tiles",
            str(args.tiles),
            "--tile-repeat",
            str(args.tile_repeat),
            "--writes",
            str(args.writes),
            "--seed",
            str(args.seed),
        ]
        if seed_it:
            command.append("--worker-seed")
        completed = subprocess.run(command, check=False)
        if completed.returncode != 0:
            sys.exit(f"{BENCH}: the {kind} county's process failed (exit {completed.returncode})")
        return json.loads(out.read_text())


def server_versions(database: ThrowawayDatabase) -> tuple[str, str]:
    import psycopg

    with psycopg.connect(database.psycopg_url, autocommit=True) as conn:
        return conn.execute(
            "SELECT split_part(version(), ' ', 2), postgis_lib_version()"
        ).fetchone()


def git_head() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def setup_line(result: dict) -> str:
    if result["seeded"]:
        how = f"created, migrated and seeded in {result['seed_s']:.0f} s"
    else:
        how = f"reused (migrate {result['migrate_s']:.1f} s)"
    extra = "; MapPoint was out of step and was rebuilt" if result.get("rebuilt_points") else ""
    return (
        f"  {result['database']}: {result['households']:,} households, "
        f"{result['map_points']:,} map points, {result['map_cells']:,} map cells; {how}; "
        f"VACUUM ANALYZE {result['vacuum_s']:.1f} s{extra}"
    )


def report_overview(small: dict, big: dict) -> list[str]:
    lines = ["(a) county overview /maps/520399/ (HTML of the whole page, build = full request)"]
    for result in (small, big):
        o = result["overview"]
        lines.append(
            f"  {result['households']:>9,} households: {o['bytes']:>8,} bytes, build p50 "
            f"{ms(o['p50']):>7} ms (min {ms(o['min'])}, max {ms(o['max'])}; {o['n']} after "
            f"{o['warmups']} warm-ups); SQL {o['queries']} statements, {ms(o['sql_s'])} ms "
            f"(slowest {ms(o['slowest_s'])} ms: {o['slowest']})"
        )
    size_ratio = big["overview"]["bytes"] / small["overview"]["bytes"]
    time_ratio = big["overview"]["p50"] / small["overview"]["p50"]
    lines.append(
        f"  ratio {big['households']:,}/{small['households']:,}: size {size_ratio:.2f}x, "
        f"build time {time_ratio:.2f}x"
    )
    lines.append(
        f"  target flat (size <= {FLAT_SIZE}x, time <= {FLAT_TIME}x): "
        f"size {met(size_ratio <= FLAT_SIZE)}, build time {met(time_ratio <= FLAT_TIME)}"
    )
    return lines


def report_tiles(big: dict) -> list[str]:
    t = big["tiles"]
    lines = [
        f"(b) tiles /maps/tiles/z/x/y.geojson at {big['households']:,} households: ours = the "
        "full request through the Client; raw = the view's maps_mapcell/maps_mappoint SQL re-run "
        f"through plain psycopg; {t['repeat']} timed requests per tile; times in ms",
        f"  county extent (EPSG:3857): {t['extent']}",
    ]
    header = (
        "  zoom tiles  reqs  SQL  bytes p50 | ours p50   p95 |  raw p50   p95 | p95 ratio "
        "sum ratio  ms/req over raw | p95<100ms p95 ratio<=1.5"
    )
    lines.append(header)
    all_ours, all_raw = [], []
    p95_ok_all, overhead_ok_all = True, True
    for z in t["zooms"]:
        ours, raw = z["ours"], z["raw"]
        all_ours += ours
        all_raw += raw
        p95_ours, p95_raw = percentile(ours, 95), percentile(raw, 95)
        sum_ratio = sum(ours) / sum(raw)
        extra = (sum(ours) - sum(raw)) / len(ours)
        p95_ok = p95_ours * 1000 < TILE_P95_TARGET_MS
        overhead_ok = p95_ours / p95_raw <= OVERHEAD_TARGET
        p95_ok_all &= p95_ok
        overhead_ok_all &= overhead_ok
        lines.append(
            f"  {z['z']:>4} {len(z['tiles']):>5} {len(ours):>5} {z['statements']:>4} "
            f"{z['bytes_p50']:>10,} | {ms(statistics.median(ours)):>8} {ms(p95_ours):>5} | "
            f"{ms(statistics.median(raw)):>8} {ms(p95_raw):>5} | {p95_ours / p95_raw:>8.2f}x "
            f"{sum_ratio:>8.2f}x {ms(extra):>16} | {met(p95_ok):>9} {met(overhead_ok):>14}"
        )
    p95_all = percentile(all_ours, 95)
    sum_ratio_all = sum(all_ours) / sum(all_raw)
    ratio_all = p95_all / percentile(all_raw, 95)
    lines.append(
        f"   all {sum(len(z['tiles']) for z in t['zooms']):>5} {len(all_ours):>5}      "
        f"{'':>10} | {ms(statistics.median(all_ours)):>8} {ms(p95_all):>5} | "
        f"{ms(statistics.median(all_raw)):>8} {ms(percentile(all_raw, 95)):>5} | "
        f"{ratio_all:>8.2f}x {sum_ratio_all:>8.2f}x "
        f"{ms((sum(all_ours) - sum(all_raw)) / len(all_ours)):>16} | "
        f"{met(p95_all * 1000 < TILE_P95_TARGET_MS):>9} {met(ratio_all <= OVERHEAD_TARGET):>14}"
    )
    for z in t["zooms"]:
        lines.append(f"  zoom {z['z']}: {z['choice']}")
    floor = t["floor"]
    lines.append(
        f"  fixed cost of a request (an empty tile far from the county, {len(floor['ours'])} "
        f"requests): ours p50 {ms(statistics.median(floor['ours']))} ms, raw SQL p50 "
        f"{ms(statistics.median(floor['raw']))} ms"
    )
    lines.append(
        f"  targets at {big['households']:,}: p95 < {TILE_P95_TARGET_MS:.0f} ms "
        f"{met(p95_all * 1000 < TILE_P95_TARGET_MS)} overall "
        f"({'every zoom' if p95_ok_all else 'not at every zoom'}); "
        f"goal p95 ours / p95 raw <= {OVERHEAD_TARGET}: {met(ratio_all <= OVERHEAD_TARGET)} "
        f"overall ({ratio_all:.2f}x; {'every zoom' if overhead_ok_all else 'not at every zoom'}; "
        f"sum ours / sum raw {sum_ratio_all:.2f}x)"
    )
    return lines


def report_figures(big: dict) -> list[str]:
    f = big["figures"]
    return [
        f"(c) region figures of the county by township at {big['households']:,} households",
        f"  ours:     maps.selectors.region_figures  p50 {ms(f['ours_p50']):>9} ms "
        f"(of {f['ours_n']} after a warm-up)",
        f"  baseline: per-household Python loop      {ms(f['naive_s']):>12} ms (Household + "
        "village, prefetched houses and their cases, current grade and latest case in Python)",
        f"  same numbers: yes ({f['townships']} townships, {f['households']:,} households; "
        "households, located, grades, stages and case states compared, overdue not: it is "
        "a rule over case dates, not a count)",
        f"  speedup = baseline / ours = {f['naive_s'] / f['ours_p50']:.0f}x",
    ]


def report_writes(big: dict) -> list[str]:
    w = big["writes"]
    with_map, without = w["with_p50"], w["without_p50"]
    r = big["rebuild"]
    return [
        f"(d) write cost of MapPoint/MapCell at {big['households']:,} households",
        f"  one House grade change, house.save() in a rolled-back transaction, p50 of {w['n']}:",
        f"    with the maps refresh (as deployed):   {ms(with_map):>7} ms",
        f"    maps post_save receiver disconnected:  {ms(without):>7} ms",
        f"    maps.points.refresh([id]) alone:       {ms(w['refresh_p50']):>7} ms "
        f"(p95 {ms(w['refresh_p95'])} ms)",
        f"    the refresh adds {ms(with_map - without)} ms per save: "
        f"{with_map / without:.2f}x a save without it",
        f"  full rebuild maps.points.refresh(): {r['seconds']:.1f} s for {r['points']:,} map "
        f"points and {r['cells']:,} map cells "
        f"({r['seconds'] / r['points'] * 1e6:.0f} us per household)",
    ]


def main_process(args) -> None:
    url = os.environ.get("DATABASE_URL", "")
    small = database_for(url, f"anju_bench_maps_{SMALL}")
    if args.database_name:
        big = database_for(url, args.database_name)
        count = seeded_households(big)
        if count is None:
            count = county_households(big)
        if not count:
            sys.exit(f"{BENCH}: {args.database_name} holds no demo county")
        args.households = count
        seed_big = False
    else:
        big = database_for(url, f"anju_bench_maps_{args.households}")
        seed_big = None
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    started_at = time.strftime("%Y-%m-%d %H:%M")
    seed_small = prepare(small, SMALL, args.fresh)
    if seed_big is None:
        seed_big = prepare(big, args.households, args.fresh)
    log(f"measuring {small.name}")
    small_result = run_worker("small", small, seed_small, args)
    log(f"measuring {big.name}")
    big_result = run_worker("big", big, seed_big, args)

    pg_version, postgis_version = server_versions(big)
    lines = [
        f"bench_maps: demo county 安居示范县 ({COUNTY}) at {SMALL:,} and {args.households:,} "
        f"households, user '{COUNTY_USER}' (County official); PostgreSQL {pg_version}, PostGIS "
        f"{postgis_version}; commit {git_head()}; started {started_at}",
        setup_line(small_result),
        setup_line(big_result),
        *report_overview(small_result, big_result),
        *report_tiles(big_result),
        *report_figures(big_result),
        *report_writes(big_result),
    ]
    if args.drop:
        for database in (small, big):
            if database.name == args.database_name:
                continue
            database.drop()
            shutil.rmtree(MEDIA / database.name, ignore_errors=True)
        names = [d.name for d in (small, big) if d.name != args.database_name]
        lines.append(f"dropped {', '.join(names)}")
    lines.append(
        f"total run time {time.perf_counter() - started:.0f} s; 1-minute load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} CPUs)"
    )
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n", encoding="utf-8")


# --- the worker: one database, in-process Django ------------------------------------------


class Capture:
    """Collect the statements the connection sends (with their parameters bound) and their
    time: an execute_wrapper, so it works with DEBUG off and survives Django's
    reset_queries() at request start."""

    def __init__(self):
        self.statements: list[tuple[str, float]] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        result = execute(sql, params, many, context)
        seconds = time.perf_counter() - started
        # The statement with its values quoted in, as Django's client-side binding sends it
        # (the tiles' and the session's statements are prepared with the values bound apart,
        # accounts.statements: last_executed_query would give their "$1" text).
        text = context["connection"].ops.compose_sql(sql, params)
        self.statements.append((text, seconds))
        return result


def captured(client, url: str):
    from django.db import connection

    capture = Capture()
    with connection.execute_wrapper(capture):
        response = client.get(url)
    return response, capture.statements


def get_ok(client, url: str):
    response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"{BENCH}: GET {url} answered {response.status_code}")
    return response


def logged_in_client():
    from django.test import Client

    from accounts.models import User

    class HttpsClient(Client):
        """Every request over HTTPS, as production serves it (DEBUG=false redirects HTTP)."""

        def request(self, **request):
            request.update({"wsgi.url_scheme": "https", "SERVER_PORT": "443"})
            return super().request(**request)

    client = HttpsClient(HTTP_HOST="127.0.0.1")
    client.force_login(User.objects.get(username=COUNTY_USER))
    return client


def measure_overview(client, repeat: int) -> dict:
    url = f"/maps/{COUNTY}/"
    warmups = 2
    for _ in range(warmups):
        get_ok(client, url)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = get_ok(client, url)
        times.append(time.perf_counter() - started)
    # The SQL of the page: the same statements every time, each timed as the median of
    # three captured requests (one capture alone is at the mercy of the machine's load).
    runs = [captured(client, url) for _ in range(3)]
    response = runs[-1][0]
    sequences = [[sql for sql, _ in statements] for _, statements in runs]
    if any(len(seq) != len(sequences[0]) for seq in sequences):
        raise SystemExit(f"{BENCH}: GET {url} did not send the same statements every time")
    medians = [
        statistics.median(statements[i][1] for _, statements in runs)
        for i in range(len(sequences[0]))
    ]
    slowest = max(range(len(medians)), key=medians.__getitem__)
    return {
        "bytes": len(response.content),
        "p50": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "n": repeat,
        "warmups": warmups,
        "queries": len(medians),
        "sql_s": sum(medians),
        "slowest_s": medians[slowest],
        "slowest": " ".join(sequences[-1][slowest].split())[:70] + "…",
    }


def tile_of(mx: float, my: float, z: int) -> tuple[int, int]:
    n = 2**z
    size = 2 * ORIGIN / n
    x = min(n - 1, max(0, math.floor((mx + ORIGIN) / size)))
    y = min(n - 1, max(0, math.floor((ORIGIN - my) / size)))
    return x, y


def county_extent(points: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    """The county boundary's extent in EPSG:3857 (the points' when it has no boundary)."""
    from housing.models import Region

    boundary = Region.objects.get(code=COUNTY).boundary
    if boundary is not None and not boundary.empty:
        return boundary.transform(3857, clone=True).extent
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def choose_tiles(points, extent, z: int, limit: int, seed: int):
    """Every tile covering the county extent, or the densest and random households' tiles."""
    x0, y0 = tile_of(extent[0], extent[3], z)
    x1, y1 = tile_of(extent[2], extent[1], z)
    covering = [(x, y) for y in range(y0, y1 + 1) for x in range(x0, x1 + 1)]
    if len(covering) <= limit:
        return covering, f"all {len(covering)} tiles covering the county's extent"
    counts = Counter(tile_of(mx, my, z) for mx, my in points)
    densest, most = counts.most_common(1)[0]
    chosen = [densest]
    rng = random.Random(seed * 100 + z)
    attempts = 0
    while len(chosen) < limit and attempts < limit * 200:
        attempts += 1
        candidate = tile_of(*rng.choice(points), z)
        if candidate not in chosen:
            chosen.append(candidate)
    held = sorted(counts[t] for t in chosen)
    return chosen, (
        f"{len(chosen)} of the {len(covering)} tiles covering the county: the densest "
        f"({most:,} households) and those of random households; households per tile "
        f"min {held[0]:,}, p50 {statistics.median(held):,.0f}, max {held[-1]:,}; "
        f"{len(counts):,} tiles hold households"
    )


def run_raw(raw, statements: list[str]) -> float:
    started = time.perf_counter()
    for sql in statements:
        raw.execute(sql).fetchall()
    return time.perf_counter() - started


def measure_tiles(client, raw, args) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_X(point), ST_Y(point) FROM maps_mappoint "
            "WHERE point IS NOT NULL AND region_code LIKE %s ORDER BY household_id",
            [COUNTY + "%"],
        )
        points = cursor.fetchall()
    extent = county_extent(points)
    zooms = []
    for z in ZOOMS:
        tiles, choice = choose_tiles(points, extent, z, args.tiles, args.seed)
        zooms.append({"z": z, "tiles": tiles, "choice": choice})
    log(f"tiles: {sum(len(z['tiles']) for z in zooms)} tiles over zooms 8-17, warming up")

    # Warm-up pass: every tile once, capturing its SQL, and that SQL once through psycopg.
    for zoom in zooms:
        zoom["sql"], sizes, counts = [], [], []
        for x, y in zoom["tiles"]:
            url = f"/maps/tiles/{zoom['z']}/{x}/{y}.geojson"
            response, statements = captured(client, url)
            if response.status_code != 200:
                raise SystemExit(f"{BENCH}: GET {url} answered {response.status_code}")
            tile_sql = [
                sql for sql, _ in statements if "maps_mapcell" in sql or "maps_mappoint" in sql
            ]
            if not tile_sql:
                raise SystemExit(f"{BENCH}: GET {url} sent no SQL to maps_mapcell/maps_mappoint")
            run_raw(raw, tile_sql)
            zoom["sql"].append(tile_sql)
            sizes.append(len(response.content))
            counts.append(len(tile_sql))
        zoom["bytes_p50"] = int(statistics.median(sizes))
        zoom["statements"] = max(counts)
        zoom["ours"], zoom["raw"] = [], []

    log("tiles: timing")
    # Repeats outermost, so the same tile is never asked twice in a row; each request is
    # followed by its raw SQL, so both meet the same cache.
    for _ in range(args.tile_repeat):
        for zoom in zooms:
            for (x, y), tile_sql in zip(zoom["tiles"], zoom["sql"], strict=True):
                url = f"/maps/tiles/{zoom['z']}/{x}/{y}.geojson"
                started = time.perf_counter()
                get_ok(client, url)
                zoom["ours"].append(time.perf_counter() - started)
                zoom["raw"].append(run_raw(raw, tile_sql))

    # The fixed cost of a request: a tile with nothing in it.
    url = "/maps/tiles/12/0/0.geojson"
    response, statements = captured(client, url)
    empty_sql = [sql for sql, _ in statements if "maps_mapcell" in sql or "maps_mappoint" in sql]
    floor = {"ours": [], "raw": []}
    for _ in range(20):
        started = time.perf_counter()
        get_ok(client, url)
        floor["ours"].append(time.perf_counter() - started)
        floor["raw"].append(run_raw(raw, empty_sql))

    for zoom in zooms:
        del zoom["sql"]
    return {
        "extent": ", ".join(f"{v:.0f}" for v in extent),
        "repeat": args.tile_repeat,
        "zooms": zooms,
        "floor": floor,
    }


def naive_figures() -> dict[str, dict]:
    """Per township, from the registry, one household at a time: the way without MapPoint."""
    from django.db.models import Prefetch

    from housing.models import House, Household
    from maps.legend import GRADE_KEY, STAGE_OF_STATE

    figures: dict[str, dict] = {}
    households = (
        Household.objects.filter(village__code__startswith=COUNTY)
        .select_related("village")
        .prefetch_related(Prefetch("houses", queryset=House.objects.prefetch_related("cases")))
    )
    for household in households.iterator(chunk_size=2000):
        houses = list(household.houses.all())
        current = next((h for h in houses if h.is_current), None)
        cases = [c for h in houses for c in h.cases.all()]
        latest = max(cases, key=lambda c: (c.created_at, c.id)) if cases else None
        grade = current.safety_grade if current else ""
        state = latest.state if latest else ""
        township = figures.setdefault(
            household.village.code[:9],
            {
                "households": 0,
                "located": 0,
                "grades": Counter(),
                "stages": Counter(),
                "states": Counter(),
            },
        )
        township["households"] += 1
        township["located"] += household.location is not None
        township["grades"][GRADE_KEY.get(grade, "none")] += 1
        township["stages"][STAGE_OF_STATE.get(state, "none")] += 1
        if state:
            township["states"][state] += 1
    return figures


def comparable(figures) -> dict:
    """RegionFigures as the naive loop counts it (categories with nothing left out)."""
    return {
        "households": figures.households,
        "located": figures.located,
        "grades": {k: n for k, n in figures.grades.items() if n},
        "stages": {k: n for k, n in figures.stages.items() if n},
        "states": {k: n for k, n in figures.states.items() if n},
    }


def measure_figures() -> dict:
    from accounts.models import User
    from housing.models import Region
    from maps.selectors import region_figures

    user = User.objects.get(username=COUNTY_USER)
    county = Region.objects.get(code=COUNTY)
    region_figures(user=user, region=county)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        total, children = region_figures(user=user, region=county)
        times.append(time.perf_counter() - started)
    log("region figures: the per-household loop (about a minute at 300,000)")
    started = time.perf_counter()
    naive = naive_figures()
    naive_s = time.perf_counter() - started

    ours = {c.region.code: comparable(c) for c in children if c.households}
    theirs = {
        code: {
            "households": f["households"],
            "located": f["located"],
            "grades": dict(f["grades"]),
            "stages": dict(f["stages"]),
            "states": dict(f["states"]),
        }
        for code, f in naive.items()
    }
    assert ours == theirs, f"region_figures and the per-household loop disagree: {ours} != {theirs}"
    assert total.households == sum(f["households"] for f in naive.values())
    return {
        "ours_p50": statistics.median(times),
        "ours_n": len(times),
        "naive_s": naive_s,
        "townships": len(ours),
        "households": total.households,
    }


def measure_writes(n: int, seed: int) -> dict:
    from django.db import transaction
    from django.db.models.signals import post_save

    from housing.models import House
    from maps import points
    from maps import signals as map_signals

    houses = list(House.objects.filter(is_current=True).order_by("pk").values_list("pk", flat=True))
    picked = random.Random(seed).sample(houses, n)
    grades = ["A", "B", "C", "D"]
    timings = {"with": [], "without": [], "refresh": []}

    def one(pk: int, mode: str) -> float:
        with transaction.atomic():
            house = House.objects.get(pk=pk)
            old = house.safety_grade
            house.safety_grade = grades[(grades.index(old) + 1) % 4] if old in grades else "C"
            if mode != "with":
                post_save.disconnect(sender=House, dispatch_uid="maps_house_saved")
            try:
                started = time.perf_counter()
                house.save()
                seconds = time.perf_counter() - started
                if mode == "refresh":
                    started = time.perf_counter()
                    points.refresh([house.household_id])
                    seconds = time.perf_counter() - started
            finally:
                if mode != "with":
                    post_save.connect(
                        map_signals.house_changed, sender=House, dispatch_uid="maps_house_saved"
                    )
            transaction.set_rollback(True)
        return seconds

    modes = list(timings)
    one(picked[0], "with")  # warm-up
    for i, pk in enumerate(picked):
        for mode in modes[i % 3 :] + modes[: i % 3]:  # rotate the order
            timings[mode].append(one(pk, mode))
    return {
        "n": n,
        "with_p50": statistics.median(timings["with"]),
        "without_p50": statistics.median(timings["without"]),
        "refresh_p50": statistics.median(timings["refresh"]),
        "refresh_p95": percentile(timings["refresh"], 95),
    }


def vacuum() -> float:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {', '.join(TABLES)}")
    return time.perf_counter() - started


def worker_process(args) -> None:
    url = os.environ.get("DATABASE_URL", "")
    database = database_for(url, args.worker_db)
    os.environ["DATABASE_URL"] = database.django_url
    # As in production: no query log on the connection, cached templates.
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-maps-not-a-secret-" + "x" * 40)
    # The seeder's photos go with the database, not into the main media/.
    os.environ["DJANGO_MEDIA_ROOT"] = str(MEDIA / database.name)
    # DEBUG=false serves the collected, hashed static files: collected here, for the bench.
    os.environ["DJANGO_STATIC_ROOT"] = str(MEDIA / "static")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections

    from housing.models import Household
    from maps import points
    from maps.models import MapCell, MapPoint

    households = SMALL if args.worker == "small" else args.households
    result = {"database": database.name, "seeded": args.worker_seed}
    call_command("collectstatic", interactive=False, verbosity=0)
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    result["migrate_s"] = time.perf_counter() - started
    if args.worker_seed:
        log(f"{database.name}: seeding {households:,} households (about 4 min at 300,000)")
        started = time.perf_counter()
        call_command("seed_demo", households=households, stdout=sys.stderr)
        result["seed_s"] = time.perf_counter() - started + result["migrate_s"]
        with connection.cursor() as cursor:
            cursor.execute(
                f"COMMENT ON DATABASE \"{database.name}\" IS '{MARKER.format(n=households)}'"
            )
    result["households"] = Household.objects.filter(village__code__startswith=COUNTY).count()
    if MapPoint.objects.count() != Household.objects.count():
        points.refresh()
        result["rebuilt_points"] = True
    result["vacuum_s"] = vacuum()
    result["map_points"] = MapPoint.objects.count()
    result["map_cells"] = MapCell.objects.count()

    client = logged_in_client()
    log(f"{database.name}: overview")
    result["overview"] = measure_overview(client, args.repeat)
    if args.worker == "big":
        import psycopg

        with psycopg.connect(database.psycopg_url, autocommit=True) as raw:
            result["tiles"] = measure_tiles(client, raw, args)
        log("region figures")
        result["figures"] = measure_figures()
        log("single-house writes")
        result["writes"] = measure_writes(args.writes, args.seed)
        log("full rebuild of MapPoint and MapCell")
        started = time.perf_counter()
        points.refresh()
        result["rebuild"] = {
            "seconds": time.perf_counter() - started,
            "points": MapPoint.objects.count(),
            "cells": MapCell.objects.count(),
        }
        vacuum()  # leave the tables as the next run expects them
    connections.close_all()
    Path(args.worker_out).write_text(json.dumps(result), encoding="utf-8")


def main() -> None:
    args = parse_args()
    if args.worker:
        worker_process(args)
    else:
        main_process(args)


if __name__ == "__main__":
    main()
