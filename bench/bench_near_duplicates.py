#!/usr/bin/env python
"""Benchmark: near-duplicate lookup among 1,000,000 stored photo hashes, against linear scans.

    DATABASE_URL=$(bash scripts/ensure_postgis.sh) .venv/bin/python bench/bench_near_duplicates.py \
        [--rows N] [--queries Q]

Needs a PostGIS server (DATABASE_URL). It creates a throw-away database `anju_bench_phash` on
that server (with the postgis extension), migrates it, and drops it at the end; the database
named in DATABASE_URL is never touched. It COPYs N photo rows with uniformly random 64-bit
hashes (and their three bands) into inspections_photo, planting for each of Q query
hashes one neighbour at a random distance 0..8. Then, for each query, it times:

  ours       inspections.evidence.near_duplicates(max_distance=8): the three band indexes
             (21, 21, 22 bits) probed with every value within 2 bits of the query's band
             (3 × 232 values, UNION ALL of index-only scans, no parallel workers), the
             Hamming distance checked in the same scans with bit_count, so only the matches
             come back;
  baseline   one SQL scan: SELECT ... WHERE bit_count((phash # q)::bit(64)) <= 8, PostgreSQL
             reading every row (what a database without the band indexes would do).

Both must return the same photos. It prints p50 and p95 per lookup for each, whether the
goal (p95 <= 5 ms) is met, and the ratio baseline / ours.
"""

import argparse
import math
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.throwaway_db import ThrowawayDatabase  # noqa: E402

BENCH_DB = "anju_bench_phash"
MAX_DISTANCE = 8
GOAL_P95_MS = 5.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="Stored hashes (1000000).")
    parser.add_argument("--queries", type=int, default=200, help="Lookups (default 200).")
    parser.add_argument(
        "--scan-queries", type=int, default=20, help="Lookups for the slow SQL scan (20)."
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--keep", action="store_true", help=f"Leave {BENCH_DB} in place (to study query plans)."
    )
    return parser.parse_args()


def make_inspection():
    """One county, village, household, house, inspector and visit for every photo row."""
    import datetime

    from django.contrib.gis.geos import Point
    from django.utils import timezone

    from accounts.models import User
    from housing.models import House, Household, Region, RegionLevel
    from inspections.models import Inspection

    province = Region.objects.create(code="52", name="贵州省", level=RegionLevel.PROVINCE)
    city = Region.objects.create(
        code="5203", name="遵义市", level=RegionLevel.CITY, parent=province
    )
    county = Region.objects.create(
        code="520399", name="安居示范县", level=RegionLevel.COUNTY, parent=city
    )
    township = Region.objects.create(
        code="520399100", name="龙溪镇", level=RegionLevel.TOWNSHIP, parent=county
    )
    village = Region.objects.create(
        code="520399100200", name="青山村", level=RegionLevel.VILLAGE, parent=township
    )
    household = Household.objects.create(
        archive_no="BENCH0001",
        village=village,
        head_name="户主",
        head_id_number="",
        location=Point(107.905, 27.205, srid=4326),
    )
    house = House.objects.create(household=household, is_current=True)
    inspector = User.objects.create(username="bench-inspector")
    now = timezone.now()
    return Inspection.objects.create(
        house=house,
        inspector=inspector,
        kind="appraisal",
        started_at=now - datetime.timedelta(hours=1),
        ended_at=now,
        payload_digest="",
    )


def flip_random_bits(value: int, count: int, rng: random.Random) -> int:
    for bit in rng.sample(range(64), count):
        value ^= 1 << bit
    return value


def load_hashes(hashes: list[int], inspection) -> float:
    """COPY one photo row per hash into inspections_photo; returns the seconds taken."""
    from django.db import connection

    from inspections import imaging

    columns = [
        "key",
        "client_uuid",
        "inspection_id",
        "stage",
        "angle",
        "uploaded_by_id",
        "original",
        "original_format",
        "display",
        "thumbnail",
        "byte_size",
        "sha256",
        "phash",
        "phash_band0",
        "phash_band1",
        "phash_band2",
        "camera_make",
        "camera_model",
        "status",
        "flags",
        "payload_digest",
        "created_at",
    ]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        copy_sql = f"COPY inspections_photo ({', '.join(columns)}) FROM STDIN"
        with cursor.cursor.copy(copy_sql) as copy:
            for i, value in enumerate(hashes):
                key = uuid.uuid4()
                copy.write_row(
                    [
                        key,
                        uuid.uuid4(),
                        inspection.pk,
                        "before",
                        "front",
                        inspection.inspector_id,
                        f"photos/original/{key}",
                        "JPEG",
                        f"photos/display/{key}.jpg",
                        f"photos/thumb/{key}.jpg",
                        1_000_000,
                        f"{i:064x}",
                        imaging.to_signed64(value),
                        *imaging.hash_bands(value),
                        "",
                        "",
                        "ready",
                        "[]",
                        "",
                        "2026-05-01 10:00:00+08",
                    ]
                )
        # What autovacuum does soon after a bulk load in production: statistics, and the
        # visibility map that lets the band probes answer from their indexes alone.
        cursor.execute("VACUUM ANALYZE inspections_photo")
    return time.perf_counter() - started


def sql_scan(query: int) -> list[tuple[int, int]]:
    from django.db import connection

    from inspections import imaging

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, bit_count((phash # %s)::bit(64)) AS d FROM inspections_photo "
            "WHERE bit_count((phash # %s)::bit(64)) <= %s ORDER BY d, id",
            [imaging.to_signed64(query)] * 2 + [MAX_DISTANCE],
        )
        return [(pk, d) for pk, d in cursor.fetchall()]


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of the values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main() -> None:
    args = parse_args()
    url = os.environ.get("DATABASE_URL", "")
    database = ThrowawayDatabase(url=url, name=BENCH_DB, bench="bench_near_duplicates")
    database.create()
    django_url = database.django_url
    try:
        os.environ["DATABASE_URL"] = django_url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection, connections

        from inspections.evidence import near_duplicates
        from inspections.models import Photo

        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        migrate_time = time.perf_counter() - started
        inspection = make_inspection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT split_part(version(), ' ', 2), postgis_lib_version()")
            pg_version, postgis_version = cursor.fetchone()

        rng = random.Random(args.seed)
        queries = [rng.getrandbits(64) for _ in range(args.queries)]
        planted = [flip_random_bits(q, rng.randint(0, MAX_DISTANCE), rng) for q in queries]
        hashes = [rng.getrandbits(64) for _ in range(args.rows - len(planted))] + planted
        rng.shuffle(hashes)
        load_time = load_hashes(hashes, inspection)
        count = Photo.objects.count()
        print(
            f"bench_near_duplicates: {count:,} stored hashes, {args.queries} lookups at distance "
            f"<= {MAX_DISTANCE}, PostgreSQL {pg_version}, PostGIS {postgis_version}, database "
            f"{BENCH_DB} (migrate {migrate_time:.1f} s, COPY + VACUUM ANALYZE {load_time:.1f} s)"
        )

        # Warm the caches once: both methods then read from memory.
        near_duplicates(phash=queries[0], max_distance=MAX_DISTANCE)
        sql_scan(queries[0])

        ours_times, found_total = [], 0
        results = {}
        for q in queries:
            seconds, found = timed(lambda q=q: near_duplicates(phash=q, max_distance=MAX_DISTANCE))
            ours_times.append(seconds)
            results[q] = found
            found_total += len(found)
            assert found, "every query has a planted neighbour"

        sql_times = []
        for q in queries[: args.scan_queries]:
            seconds, found = timed(sql_scan, q)
            sql_times.append(seconds)
            assert found == results[q], "the SQL scan and the band index disagree"

        from django.test.utils import CaptureQueriesContext

        from inspections.evidence import band_probes

        # The plan of the statement near_duplicates sends (as it runs it: no parallel workers).
        with CaptureQueriesContext(connection) as captured:
            near_duplicates(phash=queries[0], max_distance=MAX_DISTANCE)
        [lookup_sql] = [q["sql"] for q in captured.captured_queries if "bit_count" in q["sql"]]
        with connection.cursor() as cursor:
            cursor.execute("SET max_parallel_workers_per_gather = 0")
            cursor.execute("EXPLAIN " + lookup_sql)
            plan = [row[0] for row in cursor.fetchall()]
            cursor.execute("RESET max_parallel_workers_per_gather")
            # What the band indexes hold for the first query, before the distance check.
            unchecked = [
                Photo.objects.order_by()
                .filter(**{f"phash_band{i}__in": values})
                .values_list("pk", "phash")
                for i, values in band_probes(queries[0], MAX_DISTANCE)
            ]
            sql, params = unchecked[0].union(*unchecked[1:], all=True).query.sql_with_params()
            cursor.execute("SELECT count(*) FROM (" + sql + ") candidates", params)
            candidates = cursor.fetchone()[0]
        scans = sum("Index Only Scan" in line for line in plan)
        ours_p50, ours_p95 = statistics.median(ours_times), percentile(ours_times, 95)
        sql_p50, sql_p95 = statistics.median(sql_times), percentile(sql_times, 95)
        print(
            f"ours:     p50 {ours_p50 * 1000:8.2f} ms, p95 {ours_p95 * 1000:8.2f} ms per lookup "
            f"({len(ours_times)} lookups; {scans} index-only scans; {candidates:,} candidates "
            f"read in the indexes for the first query, "
            f"{found_total / len(queries):.2f} matches returned per lookup)"
        )
        print(
            f"baseline: p50 {sql_p50 * 1000:8.2f} ms, p95 {sql_p95 * 1000:8.2f} ms per lookup "
            f"({len(sql_times)} lookups; one SQL scan, bit_count over every row)"
        )
        met = "met" if ours_p95 * 1000 <= GOAL_P95_MS else "NOT met"
        print(f"p95 ≤ {GOAL_P95_MS:g} ms: {met} ({ours_p95 * 1000:.2f} ms)")
        print(
            f"ratio = baseline / ours: p50 {sql_p50 / ours_p50:.1f}x, p95 {sql_p95 / ours_p95:.1f}x"
        )
        connections.close_all()
    finally:
        if not args.keep:
            database.drop()


if __name__ == "__main__":
    main()
