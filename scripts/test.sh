#!/usr/bin/env bash
# The whole suite on PostGIS, then on SpatiaLite; fails if either fails.
# Usage: scripts/test.sh [postgis|spatialite] [pytest args...]
# Each run uses two pytest-xdist workers, each with its own test database (test_anju_gw0 and
# _gw1 on PostGIS, one in memory per worker on SpatiaLite); a later -n in the args wins
# (-n 0: one process, easier with a debugger).
set -uo pipefail
cd "$(dirname "$0")/.."
which=both
case "${1:-}" in
  both|postgis|spatialite) which=$1; shift ;;
  -*|"") ;;  # pytest arguments for both runs
  *) echo "test: unknown database '$1' (postgis, spatialite or both)" >&2; exit 2 ;;
esac
status=0

# The Celery test runs a real worker against Redis: start a throw-away one if none answers.
mkdir -p var
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "test: starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --logfile "$PWD/var/redis.log" >/dev/null
  for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi

if [ "$which" = both ] || [ "$which" = postgis ]; then
  url=$(bash scripts/ensure_postgis.sh) || { echo "test: no PostGIS database" >&2; exit 1; }
  echo "=== pytest on PostGIS ==="
  DATABASE_URL="$url" .venv/bin/python -m pytest -n 2 "$@" || status=1
fi
if [ "$which" = both ] || [ "$which" = spatialite ]; then
  echo "=== pytest on SpatiaLite ==="
  DATABASE_URL="spatialite:///$PWD/var/test-anju.sqlite3" .venv/bin/python -m pytest -n 2 "$@" || status=1
fi
if [ $status -ne 0 ]; then echo "test: FAILED" >&2; fi
exit $status
