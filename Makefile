# SplatHead Studio.  Newcomers need two commands:
#   make run     set up .venv if needed, open the viewer       (make run ARGS="head.ply --device cuda")
#   make test    set up .venv if needed, run the test suite    (make test PYTEST_ARGS="-k ply -x")
# Also: make setup (force the set-up check), make test-fast (skip tests marked slow), make bench, make clean,
# make device-carry (the .gpu and .whl folders that the lent GPU machine's calls carry: tools/device_carry.sh).

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=

# `tools/setup_env.sh` is idempotent but imports torch to report on it (~2 s); the stamp lets `make run`/`make test`
# skip it entirely while the venv is newer than every file that decides its contents.  `make setup` always runs it.
SETUP_STAMP := $(VENV)/.make-setup-stamp
SETUP_INPUTS := pyproject.toml requirements/constraints.txt tools/setup_env.sh

# GUI tests need a display.  Without one, run pytest inside a virtual X server if xvfb-run is installed;
# otherwise tests/conftest.py skips the `gui` tests and says why.
XVFB_RUN := $(shell command -v xvfb-run 2>/dev/null)
ifeq ($(strip $(DISPLAY)$(WAYLAND_DISPLAY)),)
  ifneq ($(XVFB_RUN),)
    WITH_DISPLAY := $(XVFB_RUN) -a -s "-screen 0 1280x800x24"
  endif
endif
PYTEST := $(WITH_DISPLAY) $(PY) -m pytest

.PHONY: setup run test test-fast bench clean distclean device-carry

$(SETUP_STAMP): $(SETUP_INPUTS)
	PYTHON=$(PYTHON) tools/setup_env.sh $(VENV)
	@touch $@

setup:
	PYTHON=$(PYTHON) tools/setup_env.sh $(VENV)
	@touch $(SETUP_STAMP)

run: $(SETUP_STAMP)
	$(PY) run_viewer.py $(ARGS)

test: $(SETUP_STAMP)
	$(PYTEST) $(PYTEST_ARGS)

test-fast: $(SETUP_STAMP)
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

bench: $(SETUP_STAMP)
	$(PY) -m bench $(ARGS)

device-carry:
	tools/device_carry.sh

# Caches and build leftovers only; the venv stays (distclean removes it too).
clean:
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
	rm -rf .pytest_cache .hypothesis build

distclean: clean
	rm -rf $(VENV) *.egg-info
