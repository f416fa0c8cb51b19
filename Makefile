# Everything runs from a local virtualenv created on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	@# Debian's system Python ships venv separately (python3-venv): install it when we may.
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

## Run the scripted end-to-end demo on embedded defaults (SQLite under ./.mcp-guard/).
demo: $(STAMP)
	$(VENV)/bin/mcp-guard demo

## Run the whole test suite. pytest exit code 5 (nothing collected) is a failure, not a pass.
test: $(STAMP)
	@$(PY) -m pytest -q -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check mcp_guard tests examples benchmarks
	$(VENV)/bin/ruff format --check mcp_guard tests examples benchmarks
	$(VENV)/bin/mypy mcp_guard

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .mcp-guard .pytest_cache .mypy_cache .ruff_cache
