# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint redis-server chromium screenshots clean

# What the demo needs: the package and its runtime dependencies, and the shared kernels
# compiled once (they sit in Numba's disk cache from then on).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "[1/3] creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "[2/3] installing featurestore and its dependencies into $(VENV) (a minute or two the first time)"
	@$(PIP) install --quiet --upgrade pip >/dev/null 2>&1 || true
	@( $(PIP) install -e . 2>&1; echo $$? > $(VENV)/.pip-status ) | tee $(VENV)/pip.log \
	  | grep --line-buffered -E '^(Collecting|Successfully installed)' | sed 's/^/      /' || true
	@test "$$(cat $(VENV)/.pip-status)" = 0 || { tail -20 $(VENV)/pip.log; \
	  echo "installing featurestore failed: the whole log is in $(VENV)/pip.log"; exit 1; }
	@echo "[3/3] compiling the shared kernels (once per machine, about a minute)"
	$(BIN)/python -c "from transforms import engine, fitted_kernel; engine.warm(); fitted_kernel.warm()"
	@touch $(STAMP)

# What the tests need on top: test and lint tools.
$(DEV_STAMP): $(STAMP)
	@echo "installing the test tools into $(VENV)"
	@$(PIP) install --quiet -e '.[dev]'
	@touch $(DEV_STAMP)

demo: $(STAMP)
	$(BIN)/featurestore demo

# Two test processes (pytest-xdist), one per core: most tests wait on servers, files or
# subprocesses, so the suite takes about two thirds of the time of one process.
test: $(DEV_STAMP) redis-server chromium
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2

lint: $(DEV_STAMP)
	$(BIN)/ruff check .

# Tests start a private redis-server; make sure the binary exists.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "redis-server not found; installing the Debian package redis-server"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else \
	    echo "redis-server not found: install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis)"; exit 1; \
	  fi; }

# The console's browser tests drive a headless Chromium; without it they are skipped, so a
# missing or failed install never fails the tests.
chromium:
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "chromium or chromedriver not found; installing the Debian packages chromium chromium-driver"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
	      || echo "installing chromium failed: the browser tests will be skipped"; \
	  else \
	    echo "chromium or chromedriver not found: install them (Debian/Ubuntu: sudo apt-get install chromium chromium-driver); until then the browser tests are skipped"; \
	  fi; }

# Screenshots of every console page, desktop and phone, into docs/screenshots/ (taken by
# the browser test).
screenshots: $(DEV_STAMP) chromium
	FEATURESTORE_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/console/test_browser.py

# Everything the demo and the tests write: the sample data, the offline and online stores
# and their caches under data/, the virtual environment, tool caches, and the compiled
# Python and Numba caches (__pycache__).
clean:
	rm -rf $(VENV) data/transactions.parquet data/offline.duckdb data/offline.duckdb.wal \
	  data/online.sqlite data/online.sqlite-wal data/online.sqlite-shm data/pushed data/tokens-used \
	  data/training-sets \
	  data/.featurestore-cache .cache .pytest_cache .ruff_cache .hypothesis featurestore.egg-info
	@rmdir data 2>/dev/null || true
	find . -path ./$(VENV) -prune -o -name __pycache__ -prune -exec rm -rf {} +
