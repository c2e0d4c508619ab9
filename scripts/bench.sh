#!/usr/bin/env bash
# Run every benchmark in bench/ against PostGIS. Each prints its figures and a ratio against
# a baseline measured in the same run; nothing here is a pass/fail timing assertion.
# Usage: scripts/bench.sh [bench/bench_x.py ...]
set -euo pipefail
cd "$(dirname "$0")/.."
url=$(bash scripts/ensure_postgis.sh)
benches=("$@")
[ ${#benches[@]} -gt 0 ] || benches=(bench/bench_*.py)
for b in "${benches[@]}"; do
  echo "=== $b ==="
  DATABASE_URL="$url" .venv/bin/python "$b"
done
