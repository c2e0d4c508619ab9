#!/usr/bin/env bash
# make serve: Anju's production setup on this machine, over plain HTTP on 127.0.0.1.
#
# DEBUG=false with a generated local secret, static files collected and served by WhiteNoise,
# gunicorn (config/gunicorn.conf.py), one Celery worker and Celery beat against the local
# Redis. Same database as `make run` unless DATABASE_URL says otherwise. Production differs in
# three switches only, turned off here because there is no HTTPS on 127.0.0.1: the SSL
# redirect, secure cookies and HSTS (see docs/deploy.md). Ctrl-C stops all three processes.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
DEMO_HOUSEHOLDS=${DEMO_HOUSEHOLDS:-2000}

# .env first: what it sets (a secret, a broker, a database) wins over the defaults below.
if [ -f .env ]; then set -a; . ./.env; set +a; fi

export DJANGO_DEBUG=false
if [ -z "${DJANGO_SECRET_KEY:-}" ]; then
  # Generated once and kept in var/ (ignored by git): sessions survive a restart.
  SECRET_FILE=var/serve-secret-key
  mkdir -p var
  if [ ! -s "$SECRET_FILE" ]; then
    (umask 077 && $PY -c 'import secrets; print(secrets.token_urlsafe(64))' >"$SECRET_FILE")
  fi
  DJANGO_SECRET_KEY=$(cat "$SECRET_FILE")
  export DJANGO_SECRET_KEY
fi
export DJANGO_SECURE_SSL_REDIRECT=${DJANGO_SECURE_SSL_REDIRECT:-false}
export DJANGO_SECURE_COOKIES=${DJANGO_SECURE_COOKIES:-false}
export DJANGO_HSTS_SECONDS=${DJANGO_HSTS_SECONDS:-0}
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0}
export GUNICORN_BIND=${GUNICORN_BIND:-$HOST:$PORT}

if ! $PY -c "import redis, sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2).ping()" \
    "$CELERY_BROKER_URL" 2>/dev/null; then
  echo "serve: Redis does not answer at $CELERY_BROKER_URL; start it (systemctl start redis-server, or redis-server --daemonize yes) or set CELERY_BROKER_URL." >&2
  exit 1
fi

$PY manage.py migrate --noinput -v0
$PY manage.py compilemessages -v0 --ignore=.venv
$PY manage.py collectstatic --noinput -v0
$PY manage.py seed_demo --if-empty --households "$DEMO_HOUSEHOLDS"

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT

$PY -m gunicorn -c config/gunicorn.conf.py &
pids+=($!)
$PY -m celery -A config worker -l info --concurrency 2 &
pids+=($!)
$PY -m celery -A config beat -l info --schedule var/celerybeat-schedule &
pids+=($!)
echo "serve: http://$GUNICORN_BIND (gunicorn, a Celery worker and beat; Ctrl-C stops them)"
# Whichever stops first (a crash, Ctrl-C) stops the others.
wait -n "${pids[@]}" || true
