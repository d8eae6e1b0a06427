# Set-up and the two jobs of the README. `make demo` and `make test` each install everything first.
PY ?= python

.PHONY: install demo test test-slow bench lint

install:
	$(PY) -m pip install --quiet torch==2.13.0   # the CPU wheel on local disk; never let pip resolve torch itself
	$(PY) -m pip install --quiet -e ".[dev]"

demo: install
	$(PY) -m actionbank_env simulate

test: install
	$(PY) -m pytest

test-slow: install
	$(PY) -m pytest -m slow

bench: install
	$(PY) -m benchmarks

lint:
	$(PY) -m ruff check actionbank_env agents optimizers tests benchmarks examples
	$(PY) -m mypy --strict   # files: actionbank_env/core and agents (pyproject.toml)
