# Two entry points: `make run` (the demo portal) and `make test` (the whole suite).
# Both set up what is missing on a fresh Debian/Ubuntu machine.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# Keep Python's bytecode caches even where the environment turns them off: otherwise every
# pytest-xdist worker and every subprocess the tests start compiles the project again (and pytest
# rewrites every test module again), a quarter of a fresh run's collection time.
unexport PYTHONDONTWRITEBYTECODE
# Debian packages: building python-ldap, and the real clients/servers the tests drive.
BUILD_PACKAGES := gcc python3-dev python3-venv libldap2-dev libsasl2-dev
TEST_PACKAGES := openssl libnss3-tools slapd ldap-utils chromium softhsm2 opensc

.PHONY: run test test-postgres lint setup setup-dev system-packages system-test-packages clean-demo redis redis-package

define ensure_packages
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "Missing Debian packages:$$missing"; echo "Install them with: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi
endef

system-packages:
	$(call ensure_packages,$(BUILD_PACKAGES))

system-test-packages: system-packages
	$(call ensure_packages,$(TEST_PACKAGES))

$(VENV)/.runtime: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	@touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.runtime
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

setup: system-packages $(VENV)/.runtime

setup-dev: system-test-packages $(VENV)/.dev redis node_modules/.package-lock.json

# axe-core (package.json, pinned by package-lock.json), which the browser tests inject into pages.
node_modules/.package-lock.json: package.json package-lock.json
	@command -v npm >/dev/null || { $(MAKE) --no-print-directory node-packages; }
	npm ci --no-audit --no-fund --loglevel=error

.PHONY: node-packages
node-packages:
	$(call ensure_packages,nodejs npm)

# Redis, the task queue's broker: the task-queue tests run a Celery worker on 127.0.0.1:6379.
REDIS_UP = $(PYTHON) -c "import socket; socket.create_connection(('127.0.0.1', 6379), 2).close()" 2>/dev/null
redis:
	@if ! $(REDIS_UP); then \
	  command -v redis-server >/dev/null || { $(MAKE) --no-print-directory redis-package; }; \
	  echo "Starting redis-server on 127.0.0.1:6379"; \
	  redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes >/dev/null; \
	  for i in $$(seq 30); do $(REDIS_UP) && break; sleep 0.5; done; \
	fi

redis-package:
	$(call ensure_packages,redis-server)

run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap_demo
	@echo "Portal: http://127.0.0.1:$(PORT)/  (admin: http://127.0.0.1:$(PORT)/admin/)"
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

# Reset the demo: removes the SQLite database, CA keys, audit anchors and agent PKCS#12 under var/
# (PORTAL_DATA_DIR), so that the next `make run` starts afresh. Development defaults only: it refuses
# production, a DATABASE_URL (PostgreSQL) and moved key directories (enrollment reset_demo).
clean-demo: $(VENV)/.runtime
	$(PY) manage.py reset_demo

# As production serves (gunicorn, portal/gunicorn_conf.py; DEBUG off, static files collected), on
# this machine's SQLite and generated development secrets: README, "Production topology".
.PHONY: serve
serve: export PORTAL_DEBUG ?= false
serve: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	@echo "Portal (gunicorn): http://127.0.0.1:$(PORT)/"
	PORTAL_WEB_BIND=127.0.0.1:$(PORT) $(VENV)/bin/gunicorn --config portal/gunicorn_conf.py

# The suite runs on every core (pytest-xdist; each worker has its own test database, slapd, SoftHSM
# token, Redis database and temporary directory). PYTEST_XDIST= runs it in one process (pdb, -s).
PYTEST_XDIST ?= -n auto --maxprocesses=8 --dist worksteal
test: setup-dev
	$(PY) -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

# Static checks (CI runs them before the tests): ruff, and the dependency rules between the
# apps and layers (.importlinter).
lint: $(VENV)/.dev
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports

# The same suite on PostgreSQL (DATABASE_URL defaults to the local server).
test-postgres: setup-dev
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/portal} $(PY) -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

# Benchmarks: ratios against raw cryptography, on a throwaway database (not part of the test run).
# BENCH_ARGS="--quick" for seconds, "--json FILE" for the figures; DATABASE_URL for PostgreSQL.
.PHONY: bench
bench: setup
	$(PY) bench/run.py $(BENCH_ARGS)
