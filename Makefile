# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# axe-core for the browser accessibility tests, pinned by tests/e2e/package-lock.json.
E2E_JS := tests/e2e/node_modules/.installed

.PHONY: demo test lint bench venv clean image-test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

$(E2E_JS): tests/e2e/package.json tests/e2e/package-lock.json
	npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
	touch $(E2E_JS)

demo: $(STAMP)
	$(BIN)/cognito-gate demo

test: $(STAMP) $(E2E_JS)
	$(BIN)/ruff check proxy tests bench
	$(BIN)/ruff format --check proxy tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# The container image, built with podman and run (issue 17): deploy/image/image-test.sh.
image-test: $(STAMP)
	deploy/image/image-test.sh

# The account page's screenshots in README.md / README.ja.md, from the real page (tests/e2e/readme_shots.py).
readme-shots: $(STAMP)
	$(BIN)/python -m tests.e2e.readme_shots

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
