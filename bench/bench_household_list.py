#!/usr/bin/env python
"""Benchmark: the household list's pages at 300,000 households, keyset paging against OFFSET.

    DATABASE_URL=$(bash scripts/ensure_postgis.sh) .venv/bin/python bench/bench_household_list.py \\
        [--households N] [--repeat R] [--keep] [--reuse]

Needs a PostGIS server (DATABASE_URL). It creates a throw-away database
`anju_bench_household_list` on that server, migrates it and seeds the demo county with N
households (demo.registry.demo_county_create: COPY, houses, members, history), then drops it
(--keep leaves it, --reuse seeds only if it is not there yet). As the demo's county official
(every household of the county), p50 of R runs each:

  baseline  what the list did before: Paginator over housing.selectors.household_list,
            COUNT(*) and OFFSET on every request (get_page, the rows and their houses);
  ours      housing.selectors.household_page: the page from a cursor or from the end, the
            total counted once per data version and cached ("cold": the count cache empty,
            as after a write; "warm": the count cached, as for the next request).

Pages: the first, the second (from the first page's cursor), the last, and for ours the whole
request through the view (the HTML rendered). Prints the ratios baseline / ours.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.throwaway_db import ThrowawayDatabase  # noqa: E402

BENCH_DB = "anju_bench_household_list"
PAGE = 50


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", action="store_true", help=f"Leave {BENCH_DB} in place.")
    parser.add_argument("--reuse", action="store_true", help=f"Reuse {BENCH_DB} if seeded.")
    return parser.parse_args()


def exists(database: ThrowawayDatabase) -> bool:
    import psycopg

    with psycopg.connect(database.maintenance, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database.name])
        return row.fetchone() is not None


def p50_ms(function, repeat: int, before=None) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    args = parse_args()
    database = ThrowawayDatabase(
        url=os.environ.get("DATABASE_URL", ""), name=BENCH_DB, bench="bench_household_list"
    )
    fresh = not (args.reuse and exists(database))
    if fresh:
        database.create()
    try:
        os.environ["DATABASE_URL"] = database.django_url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django

        django.setup()
        from django.core.cache import cache
        from django.core.management import call_command
        from django.core.paginator import Paginator
        from django.db import connection, connections
        from django.test import Client

        from accounts.models import User
        from housing.models import Household
        from housing.selectors import household_list, household_page

        started = time.perf_counter()
        if fresh or not Household.objects.exists():
            call_command("migrate", verbosity=0)
            from demo.registry import demo_county_create

            demo_county_create(households=args.households, seed=args.seed)
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
        seed_time = time.perf_counter() - started
        user = User.objects.get(username="county")
        count = household_list(user=user).count()
        with connection.cursor() as cursor:
            cursor.execute("SELECT split_part(version(), ' ', 2)")
            (pg_version,) = cursor.fetchone()
        print(
            f"bench_household_list: {count:,} households seen by the county official, "
            f"{PAGE} per page, PostgreSQL {pg_version}, database {BENCH_DB} "
            f"(migrate + seed {seed_time:.0f} s), p50 of {args.repeat}"
        )
        last = -(-count // PAGE)

        def baseline(number):
            def run():
                page = Paginator(household_list(user=user), PAGE).get_page(number)
                rows = list(page.object_list)
                assert page.paginator.count == count and rows
                return rows

            return run

        def ours(**kwargs):
            def run():
                page = household_page(user=user, size=PAGE, **kwargs)
                assert page.count == count and page.households
                return page.households

            return run

        first = household_page(user=user, size=PAGE)
        assert [h.pk for h in first.households] == [h.pk for h in baseline(1)()]
        second_kwargs = {"after": first.next_cursor, "page": 2}
        assert [h.pk for h in ours(**second_kwargs)()] == [h.pk for h in baseline(2)()]
        assert [h.pk for h in ours(page=last)()] == [h.pk for h in baseline(last)()]

        cases = [
            ("first page", baseline(1), {}),
            ("second page", baseline(2), second_kwargs),
            (f"last page ({last:,})", baseline(last), {"page": last}),
        ]
        results = []
        for label, base, kwargs in cases:
            base_ms = p50_ms(base, args.repeat)
            cold_ms = p50_ms(ours(**kwargs), args.repeat, before=cache.clear)
            warm_ms = p50_ms(ours(**kwargs), args.repeat)
            results.append((label, base_ms, cold_ms, warm_ms))

        class HttpsClient(Client):
            """Every request over HTTPS, as production serves it (DEBUG=false redirects HTTP)."""

            def request(self, **request):
                request.update({"wsgi.url_scheme": "https", "SERVER_PORT": "443"})
                return super().request(**request)

        client = HttpsClient(HTTP_HOST="127.0.0.1")
        client.force_login(user)

        def get_ok(url):
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"bench_household_list: GET {url} answered {response.status_code}")

        url = "/households/"
        views = {
            "first page": url,
            f"last page ({last:,})": f"{url}?page={last}",
        }
        view_ms = {label: p50_ms(lambda u=u: get_ok(u), args.repeat) for label, u in views.items()}

        print(f"{'':22s} {'baseline':>10s} {'ours cold':>10s} {'ours warm':>10s}   ratio (warm)")
        for label, base_ms, cold_ms, warm_ms in results:
            print(
                f"{label:22s} {base_ms:8.1f} ms {cold_ms:7.1f} ms {warm_ms:7.1f} ms   "
                f"{base_ms / warm_ms:5.1f}x (cold {base_ms / cold_ms:.1f}x)"
            )
        for label, ms in view_ms.items():
            print(f"whole request, ours, {label}: {ms:.1f} ms (count cached, HTML rendered)")
        connections.close_all()
    finally:
        if not args.keep:
            database.drop()


if __name__ == "__main__":
    main()
