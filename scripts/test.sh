#!/usr/bin/env bash
# The whole suite on PostGIS, then on SpatiaLite; fails if either fails.
# Usage: scripts/test.sh [postgis|spatialite] [pytest args...]
set -uo pipefail
cd "$(dirname "$0")/.."
which=${1:-both}
[ $# -gt 0 ] && shift
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
  DATABASE_URL="$url" .venv/bin/python -m pytest "$@" || status=1
fi
if [ "$which" = both ] || [ "$which" = spatialite ]; then
  echo "=== pytest on SpatiaLite ==="
  DATABASE_URL="spatialite:///$PWD/var/test-anju.sqlite3" .venv/bin/python -m pytest "$@" || status=1
fi
if [ $status -ne 0 ]; then echo "test: FAILED" >&2; fi
exit $status
