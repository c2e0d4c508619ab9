#!/usr/bin/env bash
# The whole suite on PostGIS, then on SpatiaLite; fails if either fails.
# Usage: scripts/test.sh [postgis|spatialite] [pytest args...]
set -uo pipefail
cd "$(dirname "$0")/.."
which=${1:-both}
[ $# -gt 0 ] && shift
status=0

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
