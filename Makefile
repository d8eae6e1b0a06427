# Set-up and the two jobs of the README. `make demo` and `make test` each install everything first, once per
# Python environment: a stamp file (named after the environment and the interpreter's identity) skips the pip
# installs until setup.cfg or pyproject.toml change or the environment is recreated.
PY ?= python

# The stamp's name changes when the environment is recreated or when `actionbank_env` stops importing from this
# checkout (another clone's `pip install -e` took over), so either case re-installs. The recipe names the stamp
# after the state *after* the install.
ENV_ID_CMD = $(PY) -c "import hashlib, importlib.util, os, sys; p = os.path.join(sys.prefix, 'pyvenv.cfg'); s = os.stat(p if os.path.exists(p) else sys.executable); spec = importlib.util.find_spec('actionbank_env'); ours = bool(spec and spec.origin and os.path.realpath(spec.origin).startswith(os.path.realpath('$(CURDIR)') + os.sep)); print(hashlib.sha1(f'{sys.prefix}|{s.st_ino}|{s.st_mtime_ns}|{ours}'.encode()).hexdigest()[:12])"
ENV_ID := $(shell $(ENV_ID_CMD))
STAMP := .make/installed-$(ENV_ID)

.PHONY: install demo test test-slow bench lint

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PY) -m pip install --quiet torch==2.13.0   # the CPU wheel on local disk; never let pip resolve torch itself
	$(PY) -m pip install --quiet -e ".[dev]"
	@mkdir -p .make && touch .make/installed-$$($(ENV_ID_CMD))

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
