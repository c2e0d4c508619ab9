# Anju. `make run` serves a demo county on http://127.0.0.1:8000 (SpatiaLite);
# `make test` runs the whole suite on PostGIS and on SpatiaLite.
SHELL := /bin/bash
PY := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_HOUSEHOLDS ?= 2000

.PHONY: bootstrap run serve test test-postgis test-spatialite bench lint messages

bootstrap:
	@bash scripts/bootstrap.sh

run: bootstrap
	@$(PY) manage.py migrate --noinput -v0
	@$(PY) manage.py compilemessages -v0 --ignore=.venv
	@$(PY) manage.py seed_demo --if-empty --households $(DEMO_HOUSEHOLDS)
	@$(PY) manage.py runserver $(HOST):$(PORT)

# The production setup locally (DEBUG=false, gunicorn, a Celery worker and beat on the local
# Redis, static files collected) over plain HTTP; docs/deploy.md for a real deployment.
serve: bootstrap
	@HOST=$(HOST) PORT=$(PORT) DEMO_HOUSEHOLDS=$(DEMO_HOUSEHOLDS) bash scripts/serve.sh

test: bootstrap
	@$(PY) manage.py compilemessages -v0 --ignore=.venv
	@bash scripts/test.sh

test-postgis: bootstrap
	@bash scripts/test.sh postgis

test-spatialite: bootstrap
	@bash scripts/test.sh spatialite

bench: bootstrap
	@bash scripts/bench.sh

lint: bootstrap
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@.venv/bin/lint-imports

messages: bootstrap
	@$(PY) manage.py makemessages -l zh_Hans --ignore=.venv --ignore=var --ignore=media --ignore=static --ignore=staticfiles --no-obsolete
	@$(PY) manage.py compilemessages -v0 --ignore=.venv
