# tokfeed: two commands set up a fresh machine.
#   make run   install, start the embedded database, migrate, import, embed, serve on :8000
#   make test  install, make sure Redis is up, run the whole test suite
# And the production way to serve (DEPLOY.md):
#   make serve the same preparation, then N ASGI workers on :8000 (WORKERS, default: the cores),
#              the Redis channel layer and a Celery worker (python -m tokfeed.serve)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
TRENDING := ../shared/data/tiktok-trending-2020.json
CATALOG ?= $(if $(wildcard $(TRENDING)),$(TRENDING),catalog/demo/demo_catalog.json)
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?=

.PHONY: install run serve test bench

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py import_trending $(CATALOG)
	$(PY) manage.py embed
	$(PY) manage.py collectstatic --noinput --verbosity 0
	@echo "tokfeed is serving on http://$(HOST):$(PORT)/"
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) tokfeed.asgi:application

serve: install
	$(if $(REDIS_URL),,bash scripts/ensure-redis.sh)
	$(PY) -m tokfeed.serve --host $(HOST) --port $(PORT) --catalog $(CATALOG) $(if $(WORKERS),--workers $(WORKERS))

test: install
	bash scripts/test.sh

bench: install
	$(PY) bench/embed.py
	$(PY) bench/batch.py
	$(PY) bench/ws.py
