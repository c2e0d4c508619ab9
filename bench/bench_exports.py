#!/usr/bin/env python
"""Benchmark: the export jobs (reports app) on the demo county, against what the database
and GDAL do alone.

    DATABASE_URL=$(bash scripts/ensure_postgis.sh) .venv/bin/python bench/bench_exports.py \
        [--households 300000] [--keep] [--reuse]

Needs a PostGIS server (DATABASE_URL); the database it names is never touched. The bench
creates `anju_bench_exports_<households>` on that server, migrates it, seeds the demo county
(`manage.py seed_demo --households N --photos P`: P photographed households give the
renovation cases the acceptance report needs) and gives one household of township 520399100
--pdf-photos camera-size photos (4000×3000 JPEG, ~3 MB each) through the real photo
pipeline. Media (photos, export files) go to a temporary folder. At the end the database
and the folder are dropped, unless --keep; --reuse measures a database that a --keep run
seeded with the same options (a comment on the database says so) instead of seeding again.

Every export runs through reports.services.export_request as the demo user "auditor" (whole
county, ID numbers masked), in a fresh process of its own, so its ru_maxrss is that
export's peak; without a Celery broker the job runs eagerly right after the request's
commit, once (the bench checks the export ended DONE after one attempt). It prints:

  (1) households CSV of the whole county (filters {}): the export's time against
      `COPY (<plain SELECT>) TO STDOUT WITH (FORMAT csv)` of the same rows into a file through
      psycopg (households joined to village, township, current house and key group; the
      same base columns, ORDER BY archive_no), median of --repeat each, alternated.
      Also the export's own statement through the same COPY (with the server's JIT on, as
      configured, and off), to split SQL from the rest, and a summary of its EXPLAIN ANALYZE.
      Goal: export / baseline <= 2x. When the shipped CSV writer hangs (a one-row probe:
      bench._exports_helpers.csv_copy_deadlocks), the CSV exports are measured with a
      workaround that defers the progress writes until the COPY is over, and it says so.
  (2) peak RSS of the households CSV and XLSX exports at ~N/10 rows (one township, the
      list page's region filter) and at N rows. Goal: N / (N/10) <= 1.2x.
  (3) the households GeoPackage (gis_households, gpkg) against Debian's
      `ogr2ogr -f GPKG out.gpkg PG:... -sql "<the builder's SQL>"`. Goal <= 1.5x.
  (4) one household file PDF (一户一档) of the household with --pdf-photos photos, built from
      the display copies against the same PDF embedding the originals (median of --repeat).
      The household file has no switch for originals: the bench swaps the photo's URL in
      reports.documents.household_file.photo_view and lets the document fetcher read
      photos/original/ (the output names the seam); it also shows the originals with
      WeasyPrint's dpi cap (render.IMAGE_DPI) off, i.e. each original embedded as it is.
      Goal: >= 3x faster, >= 5x smaller.
  (5) the acceptance report ZIP (one PDF per household) of a township and funding year:
      households per minute, and the process's RSS after n and after 2n households.

Figures only: nothing fails on a timing; goals are printed as met / NOT met.
"""

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.throwaway_db import ThrowawayDatabase  # noqa: E402

BENCH = "bench_exports"
COUNTY = "520399"  # demo.registry.COUNTY
PHOTO_TOWNSHIP = COUNTY + "100"  # the demo inspector's township (demo.evidence.DEMO_INSPECTOR)
USER = "auditor"
MARKER = "anju bench_exports: "
MEDIA_PARENT = Path(tempfile.gettempdir()) / "anju-bench-exports"
OGR2OGR = "/usr/bin/ogr2ogr"
CSV_GOAL = 2.0
RSS_GOAL = 1.2
GPKG_GOAL = 1.5
PDF_TIME_GOAL = 3.0
PDF_SIZE_GOAL = 5.0
# What the ledger reads, as plain SQL: households with their village, township, current
# house and key group, the same base columns, in the export's order.
BASELINE_SQL = """
SELECT h.archive_no, t.name, v.code, v.name, h.head_name, h.head_id_number, h.phone,
       h.address, kg.name, h.poverty_relocation,
       round(ST_X(h.location)::numeric, 6), round(ST_Y(h.location)::numeric, 6),
       h.location_source, c.structure_type, c.storeys, c.floor_area, c.year_built,
       c.safety_grade, c.renovation_status
FROM housing_household h
JOIN housing_region v ON v.id = h.village_id
LEFT JOIN housing_region t ON t.id = v.parent_id
LEFT JOIN housing_house c ON c.household_id = h.id AND c.is_current
LEFT JOIN housing_keygroup kg ON kg.id = h.key_group_id
WHERE v.code LIKE '{county}%'
ORDER BY h.archive_no
""".strip()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--households", type=int, default=300_000, help="Households (default 300000)."
    )
    parser.add_argument("--seed", type=int, default=2026, help="seed_demo --seed (default 2026).")
    parser.add_argument(
        "--photos",
        type=int,
        default=400,
        help="seed_demo --photos: households photographed, and so cases (default 400).",
    )
    parser.add_argument(
        "--pdf-photos", type=int, default=20, help="Photos of the household file's household."
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="Timed runs of each timing (median; default 3)."
    )
    parser.add_argument(
        "--acceptance-max",
        type=int,
        default=60,
        help="Take the township and year whose acceptance report holds the most households "
        "up to this many (default 60).",
    )
    parser.add_argument(
        "--only",
        default="1,2,3,4,5",
        help="Which parts to measure, e.g. 1,3 (default all).",
    )
    parser.add_argument(
        "--keep", action="store_true", help="Keep the database and media for a later --reuse."
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Reuse the database a --keep run seeded with the same options, if there is one.",
    )
    # The per-measurement process the main one starts.
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    parser.add_argument("--worker-db", default="", help=argparse.SUPPRESS)
    parser.add_argument("--worker-media", default="", help=argparse.SUPPRESS)
    parser.add_argument("--worker-args", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.parts = {int(p) for p in args.only.split(",") if p.strip()}
    if args.households < 100:
        parser.error("--households must be at least 100")
    return args


def log(message: str) -> None:
    """Progress, on stderr: not part of the results."""
    print(f"{BENCH}: {message}", file=sys.stderr, flush=True)


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def mb(kb: float) -> float:
    return kb / 1024


def runs(seconds) -> str:
    return ", ".join(f"{s:.2f}" for s in seconds)


# --- the main process -----------------------------------------------------------------


def marker_for(args) -> str:
    return MARKER + json.dumps(
        {
            "households": args.households,
            "seed": args.seed,
            "photos": args.photos,
            "pdf_photos": args.pdf_photos,
        },
        sort_keys=True,
    )


def database_comment(database: ThrowawayDatabase) -> str | None:
    import psycopg

    with psycopg.connect(database.maintenance, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [database.name],
        ).fetchone()
    return row[0] if row else None


def set_comment(database: ThrowawayDatabase, text: str) -> None:
    import psycopg

    with psycopg.connect(database.maintenance, autocommit=True) as conn:
        literal = text.replace("'", "''")
        conn.execute(f"COMMENT ON DATABASE \"{database.name}\" IS '{literal}'")


def run_worker(task: str, database: ThrowawayDatabase, media: Path, **kwargs) -> dict:
    """Run one measurement in a fresh process; its JSON result."""
    with tempfile.TemporaryDirectory(prefix="anju-bench-exports-") as tmp:
        out = Path(tmp) / "result.json"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            task,
            "--worker-db",
            database.name,
            "--worker-media",
            str(media),
            "--worker-args",
            json.dumps(kwargs),
            "--worker-out",
            str(out),
        ]
        completed = subprocess.run(command, check=False)
        if completed.returncode != 0:
            sys.exit(f"{BENCH}: the {task} process failed (exit {completed.returncode})")
        return json.loads(out.read_text())


def copy_to_file(conninfo: str, sql: str, target: Path, *, jit: bool = True) -> tuple:
    """COPY (sql) TO STDOUT WITH (FORMAT csv) into `target` through psycopg: (seconds, rows,
    bytes). The connection is opened before the clock starts; jit=False: with the server's
    JIT compilation off for the session."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT 1")
        if not jit:
            conn.execute("SET jit = off")
        rows = 0
        started = time.perf_counter()
        with (
            open(target, "wb") as out,
            conn.cursor() as cursor,
            cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy,
        ):
            for block in copy:
                out.write(block)
                rows += bytes(block).count(b"\n")
        seconds = time.perf_counter() - started
    return seconds, rows, target.stat().st_size


def ogr2ogr_gpkg(database: ThrowawayDatabase, sql: str, target: Path, layer: str) -> float:
    """Debian's ogr2ogr straight from PostGIS into a GeoPackage: seconds."""
    from urllib.parse import urlsplit

    parts = urlsplit(database.psycopg_url)
    pg = (
        f"PG:host={parts.hostname} port={parts.port or 5432} dbname={database.name} "
        f"user={parts.username} password={parts.password}"
    )
    target.unlink(missing_ok=True)
    command = [OGR2OGR, "-f", "GPKG", str(target), pg, "-sql", sql, "-nln", layer]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit(f"{BENCH}: ogr2ogr failed: {completed.stderr.strip()[:2000]}")
    return seconds


def gpkg_features(path: Path) -> int:
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as conn:
        (table,) = conn.execute(
            "SELECT table_name FROM gpkg_contents WHERE data_type = 'features'"
        ).fetchone()
        (count,) = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    return count


def ogr_version() -> str:
    try:
        return subprocess.run(
            [OGR2OGR, "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not found"


class Report(list):
    """The result lines; flush() prints those not printed yet (a part that fails later
    leaves the earlier parts' figures on stdout)."""

    printed = 0

    def flush(self) -> None:
        if len(self) > self.printed:
            print("\n".join(self[self.printed :]), flush=True)
            self.printed = len(self)


def export_line(label: str, r: dict) -> str:
    return (
        f"  {label}: {r['rows']:>9,} rows, {r['seconds']:7.2f} s "
        f"(builder {r['build_s']:.2f} s, store+hash+event {r['seconds'] - r['build_s']:.2f} s), "
        f"{r['size'] / 1e6:7.1f} MB; peak RSS {mb(r['peak_kb']):6.1f} MB "
        f"(process before the export {mb(r['floor_kb']):.1f} MB, "
        f"export adds {mb(r['peak_kb'] - r['floor_kb']):.1f} MB)"
    )


def part_csv(database, media, args, info, lines) -> dict:
    """(1): the whole county's households CSV against COPY of the plain SELECT."""
    log("(1) households CSV vs COPY")
    baseline_sql = BASELINE_SQL.format(county=COUNTY)
    ledger = run_worker("ledger_sql", database, media, filters={})
    ours, plain, own, own_nojit = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="anju-bench-exports-copy-") as tmp:
        target = Path(tmp) / "copy.csv"
        for i in range(args.repeat):
            log(f"  run {i + 1}/{args.repeat}")
            ours.append(
                run_worker(
                    "export",
                    database,
                    media,
                    kind="households",
                    format="csv",
                    params={"filters": {}},
                    csv_hangs=info["csv_hangs"],
                )
            )
            plain.append(copy_to_file(database.psycopg_url, baseline_sql, target))
            own.append(copy_to_file(database.psycopg_url, ledger["sql"], target))
            own_nojit.append(copy_to_file(database.psycopg_url, ledger["sql"], target, jit=False))
    t_ours = statistics.median(r["seconds"] for r in ours)
    t_build = statistics.median(r["build_s"] for r in ours)
    t_plain = statistics.median(s for s, _r, _b in plain)
    t_own = statistics.median(s for s, _r, _b in own)
    t_nojit = statistics.median(s for s, _r, _b in own_nojit)
    rows = ours[0]["rows"]
    same = all(r["rows"] == rows for r in ours) and all(
        p[1] == rows for p in plain + own + own_nojit
    )
    ratio = t_ours / t_plain
    lines += [
        f"(1) households CSV, whole county (filters {{}}), as {USER}; median of {args.repeat}, "
        "each export in a fresh process, alternated with the COPYs",
        f"  export (reports.services.export_request, households/csv): {t_ours:8.2f} s "
        f"(builder {t_build:.2f} s), {rows:,} rows, {ours[0]['size'] / 1e6:.1f} MB; "
        f"runs {runs(r['seconds'] for r in ours)} s",
        f"  baseline COPY (plain SELECT of the same base columns) to a file: {t_plain:8.2f} s, "
        f"{plain[0][1]:,} rows, {plain[0][2] / 1e6:.1f} MB; runs "
        f"{runs(s for s, _r, _b in plain)} s",
        f"  the export's own statement through the same COPY:          {t_own:8.2f} s "
        f"({t_own / t_plain:.2f}x the plain SELECT); export minus it "
        f"{t_ours - t_own:+.2f} s (Django, job, store, hash, audit event; noise when < 0)",
        f"  the same with the server's JIT off for the session (SET jit = off): {t_nojit:8.2f} s "
        f"({t_nojit / t_plain:.2f}x the plain SELECT)",
        f"  same row count: {'yes' if same else 'NO'}",
        f"  ratio export / COPY baseline = {ratio:.2f}x  (goal <= {CSV_GOAL}x: "
        f"{met(ratio <= CSV_GOAL)})",
        f"  EXPLAIN ANALYZE of the export's statement: {ledger['plan']}",
    ]
    return {"ours": ours}


def part_rss(database, media, args, info, lines, csv_runs) -> None:
    """(2): peak RSS of CSV and XLSX at a township (~N/10) and at the whole county."""
    township = info["rss_township"]
    small_filters = {"region": [township["code"]]}
    lines.append(
        f"(2) peak RSS (ru_maxrss of a fresh process per export) at {township['n']:,} rows "
        f"(township {township['code']} {township['name']}, filters {json.dumps(small_filters)}) "
        f"and at the whole county"
    )
    for fmt in ("csv", "xlsx"):
        log(f"(2) {fmt} at {township['n']:,} and at all rows")
        small = run_worker(
            "export",
            database,
            media,
            kind="households",
            format=fmt,
            params={"filters": small_filters},
            csv_hangs=info["csv_hangs"],
        )
        if fmt == "csv" and csv_runs:
            big = max(csv_runs, key=lambda r: r["peak_kb"])
        else:
            big = run_worker(
                "export",
                database,
                media,
                kind="households",
                format=fmt,
                params={"filters": {}},
                csv_hangs=info["csv_hangs"],
            )
        lines.append(export_line(f"{fmt.upper():>4} {township['n']:>7,}", small))
        lines.append(export_line(f"{fmt.upper():>4} {big['rows']:>7,}", big))
        ratio = big["peak_kb"] / small["peak_kb"]
        added = (big["peak_kb"] - big["floor_kb"]) / max(1, small["peak_kb"] - small["floor_kb"])
        lines.append(
            f"  {fmt.upper()} peak RSS {big['rows']:,} / {small['rows']:,} rows = {ratio:.2f}x "
            f"(goal <= {RSS_GOAL}x: {met(ratio <= RSS_GOAL)}); memory the export adds over "
            f"the process's own: {added:.2f}x"
        )


def part_gpkg(database, media, args, info, lines) -> None:
    """(3): the households GeoPackage against ogr2ogr straight from PostGIS."""
    log("(3) households GeoPackage vs ogr2ogr")
    probe = run_worker("gis_sql", database, media)
    if probe.get("missing"):
        lines.append(f"(3) households GeoPackage: not measured: {probe['missing']}")
        return
    ours, theirs = [], []
    with tempfile.TemporaryDirectory(prefix="anju-bench-exports-ogr-") as tmp:
        target = Path(tmp) / "ogr2ogr.gpkg"
        for i in range(args.repeat):
            log(f"  run {i + 1}/{args.repeat}")
            ours.append(
                run_worker(
                    "export",
                    database,
                    media,
                    kind="gis_households",
                    format="gpkg",
                    params={"crs": 4326},
                )
            )
            theirs.append(ogr2ogr_gpkg(database, probe["sql"], target, probe["layer"]))
        ogr_rows = gpkg_features(target)
        ogr_size = target.stat().st_size
    t_ours = statistics.median(r["seconds"] for r in ours)
    t_build = statistics.median(r["build_s"] for r in ours)
    t_ogr = statistics.median(theirs)
    ratio = t_ours / t_ogr
    lines += [
        f"(3) households GeoPackage (gis_households/gpkg, crs 4326, whole county) as {USER}; "
        f"median of {args.repeat}",
        f"  export: {t_ours:8.2f} s (builder {t_build:.2f} s), {ours[0]['features']:,} "
        f"features, {ours[0]['size'] / 1e6:.1f} MB, peak RSS {mb(ours[0]['peak_kb']):.0f} MB; "
        f"runs {runs(r['seconds'] for r in ours)} s",
        f"  ogr2ogr -f GPKG from PostGIS, the builder's SQL ({probe['how']}): {t_ogr:8.2f} s, "
        f"{ogr_rows:,} features, {ogr_size / 1e6:.1f} MB; runs "
        f"{runs(theirs)} s",
        f"  ratio export / ogr2ogr = {ratio:.2f}x  (goal <= {GPKG_GOAL}x: "
        f"{met(ratio <= GPKG_GOAL)})",
        f"  the SQL: {' '.join(probe['sql'].split())[:600]}",
    ]


def part_pdf(database, media, args, info, lines) -> None:
    """(4): the household file from display copies against the same from originals."""
    log("(4) household file PDF: display copies vs originals")
    r = run_worker("pdf", database, media, household=info["photo_household"], repeat=args.repeat)
    if r.get("missing"):
        lines.append(f"(4) household file PDF: not measured: {r['missing']}")
        return
    d, o = r["display"], r["original"]
    t_d, t_o = statistics.median(d["seconds"]), statistics.median(o["seconds"])
    lines += [
        f"(4) household file PDF (一户一档) of household {r['archive_no']} with {r['photos']} "
        f"photos ({r['pixels']} originals, {r['original_mb']:.1f} MB; display copies "
        f"{r['display_mb']:.1f} MB), render_household_file as {USER}, median of {args.repeat}",
        f"  originals embedded (seam: {r['seam']}):",
        f"    {t_o:7.2f} s, {o['size'] / 1e6:7.2f} MB, {o['pages']} pages; runs "
        f"{runs(o['seconds'])} s",
        "  display copies (as shipped):",
        f"    {t_d:7.2f} s, {d['size'] / 1e6:7.2f} MB, {d['pages']} pages; runs "
        f"{runs(d['seconds'])} s",
        f"  faster {t_o / t_d:.2f}x (goal >= {PDF_TIME_GOAL}x: {met(t_o / t_d >= PDF_TIME_GOAL)}), "
        f"smaller {o['size'] / d['size']:.2f}x (goal >= {PDF_SIZE_GOAL}x: "
        f"{met(o['size'] / d['size'] >= PDF_SIZE_GOAL)})",
    ]
    if r.get("raw"):
        raw = r["raw"]
        t_raw = statistics.median(raw["seconds"])
        lines += [
            f"  also: originals with WeasyPrint's dpi cap off (each original's bytes embedded "
            f"as they are): {t_raw:.2f} s, {raw['size'] / 1e6:.2f} MB: display copies are "
            f"{t_raw / t_d:.2f}x faster, {raw['size'] / d['size']:.2f}x smaller than that",
        ]
    if r.get("refused"):
        lines.append(f"  the fetcher refused: {r['refused']}")


def part_acceptance(database, media, args, info, lines) -> None:
    """(5): the acceptance report ZIP of one township and year: households per minute."""
    choice = info.get("acceptance")
    if not choice:
        lines.append(f"(5) acceptance report: not measured: {info.get('acceptance_why')}")
        return
    log(
        f"(5) acceptance ZIP of {choice['code']} {choice['year']} "
        f"({choice['households']} households)"
    )
    r = run_worker(
        "acceptance", database, media, region=choice["code"], funding_year=choice["year"]
    )
    if r.get("missing"):
        lines.append(f"(5) acceptance report: not measured: {r['missing']}")
        return
    n = r["done"]
    per_min = n / r["seconds"] * 60 if r["seconds"] else 0.0
    lines += [
        f"(5) acceptance report ZIP (acceptance/zip, region {choice['code']} {choice['name']}, "
        f"funding year {choice['year']}) as {USER}: {choice['why']}",
        f"  {n} households in {r['seconds']:.1f} s (builder {r['build_s']:.1f} s) = "
        f"{per_min:.1f} households/minute; {r['size'] / 1e6:.1f} MB, {r['entries']} ZIP "
        f"entries; status {r['status']}",
    ]
    samples = r["samples"]
    if len(samples) >= 2 and samples[-1][2] > samples[0][2]:
        (d0, _k0, t0), (d1, _k1, t1) = samples[0], samples[-1]
        lines.append(
            f"  household files alone (first to last household, without the report's summary "
            f"and case sections rendered before them): {(d1 - d0) / (t1 - t0) * 60:.1f} "
            f"households/minute ({(t1 - t0) / max(1, d1 - d0):.2f} s each); the first household "
            f"file was done {t0:.1f} s after the start"
        )
    if samples and n >= 2:
        half = max(1, n // 2)

        def rss_at(k):
            later = [s for s in samples if s[0] >= k]
            return (later[0] if later else samples[-1])[1]

        lines.append(
            f"  VmRSS after {half} households {mb(rss_at(half)):.0f} MB, after {2 * half} "
            f"{mb(rss_at(2 * half)):.0f} MB (ratio {rss_at(2 * half) / rss_at(half):.2f}x); "
            f"peak {mb(r['peak_kb']):.0f} MB, before the export {mb(r['floor_kb']):.0f} MB"
        )
        step = max(1, len(samples) // 8)
        lines.append(
            "  samples (households done: VmRSS MB at s): "
            + ", ".join(
                f"{d}: {mb(k):.0f} @ {t:.0f}s" for d, k, t in samples[::step] + samples[-1:]
            )
        )


def main_process(args) -> None:
    url = os.environ.get("DATABASE_URL", "")
    database = ThrowawayDatabase(url=url, name=f"anju_bench_exports_{args.households}", bench=BENCH)
    media = MEDIA_PARENT / database.name
    started = time.perf_counter()
    started_at = time.strftime("%Y-%m-%d %H:%M")
    load_before = os.getloadavg()[0]
    seed = None
    reused = args.reuse and database_comment(database) == marker_for(args) and media.is_dir()
    try:
        if reused:
            log(f"{database.name}: reusing it")
        else:
            log(f"{database.name}: creating and seeding {args.households:,} households")
            database.create()
            shutil.rmtree(media, ignore_errors=True)
            media.mkdir(parents=True)
            seed = run_worker(
                "seed",
                database,
                media,
                households=args.households,
                seed=args.seed,
                photos=args.photos,
                pdf_photos=args.pdf_photos,
            )
            set_comment(database, marker_for(args))
        info = run_worker(
            "info",
            database,
            media,
            households=args.households,
            acceptance_max=args.acceptance_max,
        )
        lines = Report()
        lines += [
            f"bench_exports {started_at}: {info['households']:,} households in county "
            f"{COUNTY}, {info['cases']:,} renovation cases, {info['photos']:,} photos; "
            f"PostgreSQL {info['pg']}, PostGIS {info['postgis']}, pyogrio {info['pyogrio']} "
            f"(GDAL {info['gdal']}), {ogr_version()} at {OGR2OGR}; database {database.name}",
        ]
        if seed:
            lines.append(
                f"  seeded in {seed['seed_s']:.0f} s (seed_demo --households {args.households} "
                f"--seed {args.seed} --photos {args.photos}); {args.pdf_photos} camera-size "
                f"photos for household {seed['photo']['archive_no']} in "
                f"{seed['photo']['seconds']:.0f} s ({seed['photo']['original_mb']:.1f} MB "
                f"originals)"
            )
        else:
            lines.append("  reused a database seeded by an earlier --keep run")
        lines.append(
            f"  VACUUM ANALYZE {info['vacuum_s']:.1f} s; load average before "
            f"{load_before:.2f} on {os.cpu_count()} CPUs"
        )
        if info["csv_hangs"]:
            lines.append(
                "  NOTE: the shipped CSV writer hangs on PostgreSQL: reports.tabular."
                "write_csv_query calls job.advance() inside `cursor.copy(...)`, and Job."
                "_write_progress's UPDATE on the same connection waits for psycopg's "
                "connection lock, held by the COPY, forever (a one-row probe did not finish "
                "in 15 s). CSV exports below are measured with the bench's workaround "
                "(bench._exports_helpers.DeferredCsvProgress: progress counted during the "
                "COPY, written once after it); everything else is the shipped code."
            )
        lines.flush()
        csv_runs = []
        if 1 in args.parts:
            csv_runs = part_csv(database, media, args, info, lines)["ours"]
            lines.flush()
        if 2 in args.parts:
            part_rss(database, media, args, info, lines, csv_runs)
            lines.flush()
        if 3 in args.parts:
            part_gpkg(database, media, args, info, lines)
            lines.flush()
        if 4 in args.parts:
            part_pdf(database, media, args, info, lines)
            lines.flush()
        if 5 in args.parts:
            part_acceptance(database, media, args, info, lines)
        lines.append(
            f"total {time.perf_counter() - started:.0f} s; load average after "
            f"{os.getloadavg()[0]:.2f}"
        )
        lines.flush()
    finally:
        if args.keep:
            log(f"kept {database.name} and {media} (--reuse measures them again)")
        else:
            database.drop()
            shutil.rmtree(media, ignore_errors=True)
            with contextlib.suppress(OSError):
                MEDIA_PARENT.rmdir()  # when no other kept database has its media there


# --- the worker processes (Django) ----------------------------------------------------


def django_setup(args) -> ThrowawayDatabase:
    url = os.environ.get("DATABASE_URL", "")
    database = ThrowawayDatabase(url=url, name=args.worker_db, bench=BENCH)
    os.environ["DATABASE_URL"] = database.django_url
    # As in production: no query log on the connection, cached templates.
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-exports-not-a-secret-" + "x" * 40)
    os.environ["DJANGO_MEDIA_ROOT"] = args.worker_media
    os.environ["ANJU_EXPORT_TMP_DIR"] = str(Path(args.worker_media) / "export-tmp")
    # Each export runs in this process, as a worker runs it (not in a thread of its own).
    os.environ["ANJU_EXPORT_IN_THREAD"] = "false"
    # No broker: Celery runs each task eagerly, in this process, after the commit.
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import logging

    # WeasyPrint's layout steps and Celery's eager task lines are not results.
    # (kombu warns that the unused broker URL is empty: Celery runs eagerly here.)
    for name in ("weasyprint.progress", "celery.app.trace", "kombu.connection"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return database


def worker_seed(database, kw) -> dict:
    import logging

    from django.core.management import call_command
    from django.db import connections

    from bench._exports_helpers import photo_household_create

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    log(f"seed_demo --households {kw['households']} --photos {kw['photos']}")
    call_command(
        "seed_demo",
        households=kw["households"],
        seed=kw["seed"],
        photos=kw["photos"],
        stdout=sys.stderr,
    )
    seed_s = time.perf_counter() - started
    log(f"{kw['pdf_photos']} camera-size photos for one household of {PHOTO_TOWNSHIP}")
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    photo = photo_household_create(
        township=PHOTO_TOWNSHIP, photos=kw["pdf_photos"], seed=kw["seed"]
    )
    connections.close_all()
    return {"seed_s": seed_s, "photo": photo}


def worker_info(database, kw) -> dict:
    import pyogrio
    from django.core.management import call_command
    from django.db import connection

    from bench._exports_helpers import BENCH_NOTE
    from housing.models import FamilyMember, House, Household, KeyGroup, Region, RegionLevel
    from inspections.models import Inspection, Photo
    from renovation.models import RenovationCase

    call_command("migrate", verbosity=0)
    # The tables the exports read, vacuumed and analysed as autovacuum leaves them soon
    # after a bulk load.
    models = [Household, House, Region, KeyGroup, FamilyMember, RenovationCase, Photo]
    tables = [m._meta.db_table for m in models] + [Inspection._meta.db_table]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {', '.join(tables)}")
        vacuum_s = time.perf_counter() - started
        cursor.execute("SELECT split_part(version(), ' ', 2), postgis_lib_version()")
        pg, postgis = cursor.fetchone()
    county = Household.objects.filter(village__code__startswith=COUNTY)
    total = county.count()
    townships = []
    for region in Region.objects.filter(
        level=RegionLevel.TOWNSHIP, code__startswith=COUNTY
    ).order_by("code"):
        townships.append(
            {
                "code": region.code,
                "name": region.name,
                "n": county.filter(village__code__startswith=region.code).count(),
            }
        )
    # The township nearest a tenth of the county: the list page's region filter takes one.
    rss_township = min(townships, key=lambda t: (abs(t["n"] - total / 10), t["code"]))
    # Does a CSV ledger export finish at all? (See bench._exports_helpers.csv_copy_deadlocks.)
    from bench._exports_helpers import csv_copy_deadlocks

    csv_hangs = csv_copy_deadlocks(username=USER)
    photo_household = (
        Photo.objects.filter(inspection__notes=BENCH_NOTE)
        .values_list("inspection__house__household_id", flat=True)
        .first()
    )
    result = {
        "households": total,
        "cases": RenovationCase.objects.count(),
        "photos": Photo.objects.count(),
        "pg": pg,
        "postgis": postgis,
        "pyogrio": pyogrio.__version__,
        "gdal": pyogrio.__gdal_version_string__,
        "vacuum_s": vacuum_s,
        "townships": townships,
        "rss_township": rss_township,
        "photo_household": photo_household,
        "csv_hangs": csv_hangs,
    }
    # The acceptance report: the township and year with the most households, up to a cap.
    candidates = acceptance_candidates()
    if candidates is None:
        result["acceptance_why"] = "reports/documents/acceptance.py does not exist (yet)"
        return result
    names = {t["code"]: t["name"] for t in townships}
    fitting = [c for c in candidates if c["households"] <= kw["acceptance_max"]]
    if not candidates:
        result["acceptance_why"] = "no township has a case the report takes"
    elif fitting:
        best = max(fitting, key=lambda c: (c["households"], c["code"]))
        biggest = max(candidates, key=lambda c: c["households"])
        why = (
            f"the township and year with the most households ({best['households']})"
            if best is biggest
            else (
                f"the most households up to --acceptance-max {kw['acceptance_max']} "
                f"(the largest, {biggest['code']} {biggest['year']}, has "
                f"{biggest['households']})"
            )
        )
        result["acceptance"] = {**best, "name": names.get(best["code"], ""), "why": why}
    else:
        result["acceptance_why"] = (
            f"every township's report has more than --acceptance-max {kw['acceptance_max']} "
            "households"
        )
    result["acceptance_candidates"] = candidates
    return result


def acceptance_candidates() -> list[dict] | None:
    """(township code, funding year, households its acceptance ZIP holds: those with a case
    funded that year there, whatever its state), or None when there is no builder yet."""
    try:
        from reports.documents import acceptance  # noqa: F401
    except ImportError:
        return None
    from django.db.models import Count
    from django.db.models.functions import Substr

    from renovation.models import RenovationCase

    rows = (
        RenovationCase.objects.filter(house__household__village__code__startswith=COUNTY)
        .annotate(township=Substr("house__household__village__code", 1, len(COUNTY) + 3))
        .values("township", "funding_year")
        .annotate(households=Count("house__household", distinct=True))
        .order_by()
    )
    return [
        {"code": r["township"], "year": r["funding_year"], "households": r["households"]}
        for r in rows
    ]


class Timed:
    """Wraps an export kind's builder function to time it (the rest of the job is the
    claim, hashing, storing and the audit event)."""

    def __init__(self, kind: str):
        from importlib import import_module

        from reports.kinds import KINDS

        module, name = KINDS[kind].builder.rsplit(".", 1)
        self.module = import_module(module)
        self.name = name
        self.seconds = 0.0

    def __enter__(self):
        original = getattr(self.module, self.name)
        self.original = original
        timed = self

        def builder(job):
            started = time.perf_counter()
            try:
                return original(job)
            finally:
                timed.seconds += time.perf_counter() - started

        setattr(self.module, self.name, builder)
        return self

    def __exit__(self, *exc):
        setattr(self.module, self.name, self.original)
        return False


def run_export(*, kind: str, format: str, params: dict, sampler=None) -> tuple[object, dict]:
    """One export through the service, as in production without a broker; its figures."""
    from django.core.files.storage import default_storage

    from accounts.models import User
    from bench._exports_helpers import peak_rss_kb
    from reports.models import Export, ExportStatus
    from reports.services import export_request

    user = User.objects.get(username=USER)
    with Timed(kind) as timed:
        floor = peak_rss_kb()
        started = time.perf_counter()
        export = export_request(user=user, kind=kind, format=format, params=params)
        seconds = time.perf_counter() - started
        peak = peak_rss_kb()
    export = Export.objects.get(pk=export.pk)
    if export.status != ExportStatus.DONE or export.attempts != 1:
        sys.exit(
            f"{BENCH}: export {kind}/{format} {params}: status {export.status}, "
            f"{export.attempts} attempts: {export.error}"
        )
    return export, {
        "seconds": seconds,
        "build_s": timed.seconds,
        "rows": export.done,
        "total": export.total,
        "size": export.size,
        "floor_kb": floor,
        "peak_kb": peak,
        "status": export.status,
        "path": default_storage.path(export.file),
    }


def worker_export(database, kw) -> dict:
    import warnings

    # Import what the job imports before the floor is read, so that the floor is the
    # process's own memory and the rest is the export's.
    from importlib import import_module

    from reports.kinds import KINDS

    warnings.simplefilter("ignore")
    with contextlib.suppress(ImportError):
        import_module(KINDS[kw["kind"]].builder.rsplit(".", 1)[0])
    workaround = contextlib.nullcontext()
    if kw["format"] == "csv" and kw.get("csv_hangs"):
        from bench._exports_helpers import DeferredCsvProgress

        workaround = DeferredCsvProgress()
    with workaround:
        _export, result = run_export(kind=kw["kind"], format=kw["format"], params=kw["params"])
    if kw["format"] == "gpkg":
        result["features"] = gpkg_features(Path(result["path"]))
    return result


def worker_ledger_sql(database, kw) -> dict:
    """The households ledger's statement for the user, as the CSV writer sends it to COPY."""
    from django.db import connection

    from accounts.models import User
    from reports import ledgers
    from reports.jobs import Job

    user = User.objects.get(username=USER)

    class FakeExport:
        kind = "households"
        format = "csv"
        language = "zh-hans"
        pk = None

    job = Job(
        export=FakeExport(),
        user=user,
        params={"filters": kw["filters"]},
        path=Path("/dev/null"),
        workdir=Path("/tmp"),
        stamp=None,
    )
    ledger = ledgers.households_ledger(job)
    sql, params = ledger.sql(neutralise=True)
    with connection.cursor() as cursor:
        statement = cursor.cursor.mogrify(sql, params)
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS OFF) {statement}")
        explain = [row[0] for row in cursor.fetchall()]
    return {"sql": statement, "plan": plan_summary(explain)}


def plan_summary(explain: list[str]) -> str:
    """What matters in a long EXPLAIN ANALYZE: cost, subplans, JIT and the times."""
    import re

    def first(prefix: str) -> str:
        return next((line.strip() for line in explain if line.strip().startswith(prefix)), "")

    cost = re.search(r"cost=[\d.]+\.\.([\d.]+)", explain[0])
    subplans, executed, loops = 0, 0, 0
    for i, line in enumerate(explain[:-1]):
        if line.strip().startswith("SubPlan"):
            subplans += 1
            found = re.search(r"loops=(\d+)\)", explain[i + 1])
            if found:
                executed += 1
                loops = max(loops, int(found.group(1)))
    jit = first("Timing:")
    parts = [
        f"estimated total cost {cost.group(1) if cost else '?'}",
        f"{subplans} correlated SubPlans ({executed} executed, up to {loops:,} loops each)",
        f"JIT {first('Functions:')}, {jit}" if jit else "no JIT",
        first("Planning Time"),
        first("Execution Time"),
    ]
    return "; ".join(p for p in parts if p)


def worker_gis_sql(database, kw) -> dict:
    """The SQL the households GeoPackage builder reads (reports.gis.households_query), for
    ogr2ogr; or what is missing."""
    try:
        from reports import gis
    except ImportError as error:
        return {"missing": f"reports/gis.py cannot be imported ({error})"}
    if not hasattr(gis, "households_query"):
        return {"missing": "reports.gis has no households_query"}
    from django.db import connection

    from accounts.models import User

    user = User.objects.get(username=USER)
    srid = kw.get("srid", 4326)
    rows = gis.households_query(user=user, region=None, srid=srid)
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        inner = cursor.cursor.mogrify(sql, params)
    # The builder's statement as it is; outside it only names for its columns (the same
    # field names as the export's) and the WKB turned back into a geometry for OGR.
    names = [a.name for a in gis.HOUSEHOLD_ATTRIBUTES if a.labels is None]
    labels = [a.name for a in gis.HOUSEHOLD_ATTRIBUTES if a.labels is not None]
    columns = ", ".join(f'"{n}"' for n in names)
    outer = (
        f"SELECT {columns}, ST_GeomFromWKB(wkb, {srid}) AS geom "
        f"FROM ({inner}) AS rows({columns}, wkb)"
    )
    return {
        "sql": outer,
        "layer": gis.HOUSEHOLDS_LAYER,
        "how": "reports.gis.households_query's statement, its columns named and its WKB "
        f"read back by ST_GeomFromWKB; without the label fields {', '.join(labels)} that the "
        "builder words in Python",
    }


def worker_pdf(database, kw) -> dict:
    import inspect

    from django.utils import timezone
    from pypdf import PdfReader

    from accounts.models import User
    from bench._exports_helpers import jpeg_sizes
    from housing.selectors import household_get
    from inspections.models import Photo

    try:
        from reports.documents import household_file, render
    except ImportError as error:
        return {"missing": f"reports/documents/household_file.py ({error})"}
    from reports.jobs import Stamp

    user = User.objects.get(username=USER)
    pk = kw["household"]
    sizes = jpeg_sizes(pk)
    stamp = Stamp(
        number="AJ-2026-999999",
        issued_at=timezone.now(),
        chain_head="0" * 64,
        verify_url="https://anju.example/verify/?number=AJ-2026-999999",
    )
    workdir = Path(tempfile.mkdtemp(prefix="anju-bench-pdf-"))
    signature = inspect.signature(household_file.render_household_file)
    switch = next(
        (
            p
            for p in ("originals", "use_originals", "photo_source", "photos")
            if p in signature.parameters
        ),
        None,
    )

    @contextlib.contextmanager
    def originals(dpi_cap: bool = True):
        """Embed the originals: the photo's src in photo_view (the seam), and the fetcher
        allowed to read photos/original/; optionally WeasyPrint's dpi cap off."""
        view, prefixes, dpi = household_file.photo_view, render.READABLE_PREFIXES, render.IMAGE_DPI

        def original_view(photo, **kwargs):
            result = view(photo, **kwargs)
            if result["src"]:
                result["src"] = render.storage_url(photo.original.name)
            return result

        household_file.photo_view = original_view
        render.READABLE_PREFIXES = (*prefixes, "photos/original/")
        if not dpi_cap:
            render.IMAGE_DPI = None
        try:
            yield
        finally:
            household_file.photo_view = view
            render.READABLE_PREFIXES = prefixes
            render.IMAGE_DPI = dpi

    refused = []
    html_to_pdf = render.html_to_pdf

    def noting_refusals(html, target):
        fetcher = html_to_pdf(html, target)
        refused.extend(fetcher.refused)
        return fetcher

    # Only to see what the document fetcher refused (a photo it did not embed).
    render.html_to_pdf = noting_refusals

    def one(variant: str) -> tuple[float, int, int]:
        target = workdir / f"{variant}.pdf"
        target.unlink(missing_ok=True)
        extra = {}
        if switch and variant != "display":
            extra = {switch: True}
        context = (
            originals(dpi_cap=variant != "raw")
            if variant != "display" and not switch
            else contextlib.nullcontext()
        )
        with context:
            started = time.perf_counter()
            household = household_get(user=user, pk=pk)  # as reports.scope.household_of
            household_file.render_household_file(
                user=user, household=household, stamp=stamp, target=target, **extra
            )
            seconds = time.perf_counter() - started
        return seconds, target.stat().st_size, len(PdfReader(target).pages)

    variants = ["display", "original"] + (["raw"] if not switch else [])
    results = {v: {"seconds": []} for v in variants}
    try:
        # Warm up (fonts, templates) with one display render, not timed.
        one("display")
        for _i in range(kw["repeat"]):
            for variant in variants:
                seconds, size, pages = one(variant)
                results[variant]["seconds"].append(seconds)
                results[variant].update(size=size, pages=pages)
    finally:
        render.html_to_pdf = html_to_pdf
        shutil.rmtree(workdir, ignore_errors=True)
    ready = Photo.objects.filter(inspection__house__household_id=pk).first()
    return {
        **sizes,
        "archive_no": ready.inspection.house.household.archive_no if ready else "",
        "pixels": " ".join(f"{w}x{h}" for w, h in sizes["pixels"]),
        "display": results["display"],
        "original": results["original"],
        "raw": results.get("raw"),
        "seam": (
            f"render_household_file({switch}=True)"
            if switch
            else "reports.documents.household_file.photo_view's 'src' set to "
            "storage_url(photo.original.name), and reports.documents.render."
            "READABLE_PREFIXES + ('photos/original/',) so the DocumentFetcher serves them"
        ),
        "refused": sorted(set(refused))[:5],
    }


def worker_acceptance(database, kw) -> dict:
    import zipfile

    try:
        from reports.documents import acceptance  # noqa: F401
    except ImportError as error:
        return {"missing": f"reports/documents/acceptance.py ({error})"}
    from bench._exports_helpers import RssSampler

    with RssSampler(every_s=0.0) as sampler:
        export, result = run_export(
            kind="acceptance",
            format="zip",
            params={"region": kw["region"], "funding_year": kw["funding_year"]},
        )
    with zipfile.ZipFile(result["path"]) as archive:
        result["entries"] = len(archive.namelist())
    result["done"] = export.done
    result["samples"] = sampler.samples
    return result


WORKERS = {
    "seed": worker_seed,
    "info": worker_info,
    "export": worker_export,
    "ledger_sql": worker_ledger_sql,
    "gis_sql": worker_gis_sql,
    "pdf": worker_pdf,
    "acceptance": worker_acceptance,
}


def worker_process(args) -> None:
    database = django_setup(args)
    from django.db import connections

    result = WORKERS[args.worker](database, json.loads(args.worker_args))
    connections.close_all()
    Path(args.worker_out).write_text(json.dumps(result, default=str), encoding="utf-8")


def main() -> None:
    args = parse_args()
    if args.worker:
        worker_process(args)
    else:
        main_process(args)


if __name__ == "__main__":
    main()
