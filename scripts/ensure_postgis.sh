#!/usr/bin/env bash
# Make sure a PostGIS database is reachable and print its URL (postgis://...) on stdout.
#
# A given TEST_DATABASE_URL or a postgis:// DATABASE_URL is used as it is. Otherwise the
# local Debian cluster is started if it is down, and a role "anju" (password "anju", allowed
# to create the postgis extension) and a database "anju" are created once.
set -euo pipefail

if [ -n "${TEST_DATABASE_URL:-}" ]; then echo "$TEST_DATABASE_URL"; exit 0; fi
case "${DATABASE_URL:-}" in postgis://*|postgres://*|postgresql://*) echo "$DATABASE_URL"; exit 0;; esac

PGHOST=127.0.0.1
PGPORT=${ANJU_PGPORT:-5432}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

if ! pg_isready -q -h "$PGHOST" -p "$PGPORT"; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
  if [ -z "$version" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
    echo "ensure_postgis: creating PostgreSQL $version cluster" >&2
    as_postgres true 2>/dev/null || true
    pg_createcluster "$version" main >&2
  fi
  echo "ensure_postgis: starting PostgreSQL $version" >&2
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || \
    pg_ctlcluster "$version" main start >&2
  for _ in $(seq 1 30); do pg_isready -q -h "$PGHOST" -p "$PGPORT" && break; sleep 1; done
fi

# Superuser statements go over the local socket as the postgres OS user (peer auth on a
# stock Debian install), or over TCP when that is how this machine is set up (trust).
psql_admin() {
  if as_postgres psql -v ON_ERROR_STOP=1 -qAt -p "$PGPORT" "$@" 2>/dev/null; then return 0; fi
  psql -v ON_ERROR_STOP=1 -qAt -h "$PGHOST" -p "$PGPORT" -U postgres "$@"
}

if [ "$(psql_admin -d postgres -c "select 1 from pg_roles where rolname='anju'")" != "1" ]; then
  # SUPERUSER because the test runner creates test databases and the postgis extension in them.
  psql_admin -d postgres -c "create role anju login superuser password 'anju'" >&2
fi
if [ "$(psql_admin -d postgres -c "select 1 from pg_database where datname='anju'")" != "1" ]; then
  psql_admin -d postgres -c "create database anju owner anju" >&2
fi
psql_admin -d anju -c "create extension if not exists postgis" >&2
echo "postgis://anju:anju@$PGHOST:$PGPORT/anju"
